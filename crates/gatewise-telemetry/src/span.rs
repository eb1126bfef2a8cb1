//! A finished call record as OpenTelemetry spans: one SERVER span for the
//! gateway's handling of the request and, when the request went upstream,
//! one CLIENT span for the upstream call. Pure: no clock, no randomness,
//! no I/O, so the mapping is tested as a function.
//!
//! Attribute names follow the OpenTelemetry semantic conventions for HTTP
//! spans (`http.request.method`, `url.path`, `http.response.status_code`,
//! `http.route`, `client.address`, `server.address`, ...); what is
//! gatewise's own is under `gatewise.*`. Nothing secret enters a span: the
//! record holds no token (only its fingerprint, which is not exported
//! either), headers are not exported, and a kept query string was already
//! masked when the record was built.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatewise_core::calllog::CallRecord;
use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// The spans of one call: its SERVER span, then its CLIENT span when the
/// request went upstream. Empty when the record is not exportable: not
/// sampled (W3C Trace Context §3.2.2.5: the gateway honours the flag it
/// forwarded), or without valid trace and span ids (records of older
/// builds).
pub fn spans(record: &CallRecord, scope: &InstrumentationScope) -> Vec<SpanData> {
    if record.sampled != Some(true) {
        return Vec::new();
    }
    let (Some(trace_id), Some(span_id)) = (
        record.trace_id.as_deref().and_then(parse_trace_id),
        record.span_id.as_deref().and_then(parse_span_id),
    ) else {
        return Vec::new();
    };
    let parent = record
        .parent_span_id
        .as_deref()
        .and_then(parse_span_id)
        .unwrap_or(SpanId::INVALID);
    let start = UNIX_EPOCH + Duration::from_millis(record.start_ms);
    let end = start + Duration::from_micros(record.total_us);
    let method = known_method(&record.method);
    let name = match &record.route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let (path, query) = match record.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (record.path.as_str(), None),
    };
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.to_owned()),
        KeyValue::new("url.path", path.to_owned()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("http.response.status_code", i64::from(record.status)),
        KeyValue::new("gatewise.request_id", record.request_id.clone()),
    ];
    if method == "_OTHER" {
        attributes.push(KeyValue::new(
            "http.request.method_original",
            record.method.clone(),
        ));
    }
    if let Some(q) = query {
        attributes.push(KeyValue::new("url.query", q.to_owned()));
    }
    if let Some(route) = &record.route {
        attributes.push(KeyValue::new("http.route", route.clone()));
    }
    if let Some(ip) = record.client_ip {
        attributes.push(KeyValue::new("client.address", ip.to_string()));
    }
    if let Some(host) = record.request_headers.get("host") {
        let (address, port) = split_host_port(host);
        attributes.push(KeyValue::new("server.address", address.to_owned()));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    if let Some(ua) = record.request_headers.get("user-agent") {
        attributes.push(KeyValue::new("user_agent.original", ua.to_owned()));
    }
    if record.bytes_in > 0 {
        attributes.push(KeyValue::new(
            "http.request.body.size",
            saturating_i64(record.bytes_in),
        ));
    }
    attributes.push(KeyValue::new(
        "http.response.body.size",
        saturating_i64(record.bytes_out),
    ));
    for (key, value) in [
        ("gatewise.reason", &record.reason),
        ("gatewise.client_id", &record.client_id),
        ("gatewise.sub", &record.sub),
        ("gatewise.issuer", &record.issuer),
        ("gatewise.upstream", &record.upstream),
    ] {
        if let Some(v) = value {
            attributes.push(KeyValue::new(key, v.clone()));
        }
    }
    if let Some(us) = record.auth_us {
        attributes.push(KeyValue::new("gatewise.auth_us", saturating_i64(us)));
    }
    let status = server_status(record);
    if let Status::Error { .. } = status {
        // `error.type`: the gateway's reason code when it has one (a
        // stable, low-cardinality value), else the status code, as the
        // HTTP conventions ask for server errors.
        let kind = record
            .reason
            .clone()
            .unwrap_or_else(|| record.status.to_string());
        attributes.push(KeyValue::new("error.type", kind));
    }
    let server = SpanData {
        span_context: context(trace_id, span_id),
        parent_span_id: parent,
        parent_span_is_remote: parent != SpanId::INVALID,
        span_kind: SpanKind::Server,
        name: Cow::Owned(name),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    };
    let mut out = vec![server];
    if let Some(client) = client_span(record, trace_id, span_id, end, method, scope) {
        out.push(client);
    }
    out
}

/// The upstream call: from when the gateway started sending to the
/// upstream until the response body ended (`upstream_total_us`, measured
/// at the same moment as `total_us`, so it ends with the SERVER span); an
/// event marks the response head (`upstream_first_byte_us`).
fn client_span(
    record: &CallRecord,
    trace_id: TraceId,
    server_id: SpanId,
    end: SystemTime,
    method: &str,
    scope: &InstrumentationScope,
) -> Option<SpanData> {
    let upstream_us = record.upstream_total_us?;
    let start = end
        .checked_sub(Duration::from_micros(upstream_us.min(record.total_us)))
        .unwrap_or(end);
    let mut attributes = vec![KeyValue::new("http.request.method", method.to_owned())];
    if let Some(addr) = &record.upstream_addr {
        let (address, port) = split_host_port(addr);
        attributes.push(KeyValue::new("server.address", address.to_owned()));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    if let Some(u) = &record.upstream {
        attributes.push(KeyValue::new("gatewise.upstream", u.clone()));
    }
    // The status the client got: the upstream's unless the gateway failed
    // the call (a reason code on a 5xx).
    let upstream_failed = record.status >= 500 && record.reason.is_some();
    if !upstream_failed {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(record.status),
        ));
    }
    let mut events = SpanEvents::default();
    if let Some(fb) = record.upstream_first_byte_us {
        events.events.push(Event::new(
            "gatewise.upstream.first_byte",
            start + Duration::from_micros(fb.min(upstream_us)),
            Vec::new(),
            0,
        ));
    }
    // HTTP client spans: 4xx and 5xx answers are errors (semantic
    // conventions, "Status"), and so is a call that got no answer.
    let status = if upstream_failed {
        Status::error(record.reason.clone().unwrap_or_default())
    } else if record.status >= 400 {
        Status::error(record.status.to_string())
    } else {
        Status::Unset
    };
    Some(SpanData {
        span_context: context(trace_id, client_span_id(server_id)),
        parent_span_id: server_id,
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: Cow::Owned(method.to_owned()),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    })
}

/// SERVER span status: an error for 5xx answers and for every request the
/// gateway refused or failed itself (a reason code: `jwt-expired`,
/// `rate-limited`, `client-closed`, ...); a 4xx the upstream chose is not
/// the server's error (semantic conventions, HTTP server spans).
fn server_status(record: &CallRecord) -> Status {
    match &record.reason {
        Some(reason) => Status::error(reason.clone()),
        None if record.status >= 500 => Status::error(record.status.to_string()),
        None => Status::Unset,
    }
}

/// The CLIENT span's id, derived from the SERVER span's (SplitMix64's
/// finalizer over it): unique in the trace with the same odds as a random
/// id, and the mapping stays a pure function of the record.
pub fn client_span_id(server: SpanId) -> SpanId {
    let mut z = u64::from_be_bytes(server.to_bytes()) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    SpanId::from_bytes(if z == 0 { 1u64 } else { z }.to_be_bytes())
}

fn context(trace_id: TraceId, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    )
}

/// A trace id of 32 hex digits, not all zero (W3C Trace Context §3.2.2.3).
fn parse_trace_id(hex: &str) -> Option<TraceId> {
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| TraceId::from_hex(hex).ok())
        .flatten()
        .filter(|t| *t != TraceId::INVALID)
}

/// A span id of 16 hex digits, not all zero (§3.2.2.4).
fn parse_span_id(hex: &str) -> Option<SpanId> {
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| SpanId::from_hex(hex).ok())
        .flatten()
        .filter(|s| *s != SpanId::INVALID)
}

/// The method as the HTTP conventions want it: one of the known methods, or
/// `_OTHER` (the original then goes in `http.request.method_original`),
/// which keeps span names low-cardinality.
fn known_method(m: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN.iter().copied().find(|k| *k == m).unwrap_or("_OTHER")
}

/// `host:port`, `[v6]:port` or a bare host.
fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (s, None),
        },
        _ => (s, None),
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewise_core::calllog::{mask_headers, token_fingerprint};
    use opentelemetry::Value;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const GATEWAY_SPAN: &str = "53995c3f42cd8ad8";
    const CLIENT_SPAN: &str = "00f067aa0ba902b7";
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

    fn scope() -> InstrumentationScope {
        InstrumentationScope::builder("gatewise").build()
    }

    fn proxied() -> CallRecord {
        let mut r = CallRecord::new("req-7", 1_700_000_000_123, "GET", "/orders/42");
        r.trace_id = Some(TRACE.into());
        r.span_id = Some(GATEWAY_SPAN.into());
        r.parent_span_id = Some(CLIENT_SPAN.into());
        r.sampled = Some(true);
        r.route = Some("orders".into());
        r.upstream = Some("orders-api".into());
        r.upstream_addr = Some("127.0.0.1:9000".into());
        r.status = 200;
        r.bytes_out = 512;
        r.total_us = 3_000;
        r.auth_us = Some(120);
        r.upstream_first_byte_us = Some(1_500);
        r.upstream_total_us = Some(2_000);
        r.client_ip = Some("10.0.0.9".parse().unwrap());
        r.client_id = Some("web-app".into());
        r.sub = Some("alice".into());
        r.issuer = Some("https://as.example".into());
        r.token_fingerprint = Some(token_fingerprint(TOKEN));
        r.request_headers = mask_headers([
            ("host", "api.example:8443"),
            ("authorization", &format!("Bearer {TOKEN}")),
            ("user-agent", "curl/8"),
        ]);
        r
    }

    fn attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn a_proxied_call_is_a_server_span_with_a_client_child() {
        let spans = spans(&proxied(), &scope());
        assert_eq!(spans.len(), 2);
        let (server, client) = (&spans[0], &spans[1]);
        assert_eq!(server.span_kind, SpanKind::Server);
        assert_eq!(server.name, "GET orders");
        assert_eq!(
            server.span_context.trace_id(),
            TraceId::from_hex(TRACE).unwrap()
        );
        assert_eq!(
            server.span_context.span_id(),
            SpanId::from_hex(GATEWAY_SPAN).unwrap()
        );
        assert_eq!(
            server.parent_span_id,
            SpanId::from_hex(CLIENT_SPAN).unwrap()
        );
        assert!(server.parent_span_is_remote);
        assert!(server.span_context.is_sampled());
        let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(server.start_time, start);
        assert_eq!(server.end_time, start + Duration::from_micros(3_000));
        assert_eq!(server.status, Status::Unset);
        for (key, value) in [
            ("http.request.method", Value::from("GET")),
            ("url.path", Value::from("/orders/42")),
            ("http.response.status_code", Value::I64(200)),
            ("http.route", Value::from("orders")),
            ("client.address", Value::from("10.0.0.9")),
            ("server.address", Value::from("api.example")),
            ("server.port", Value::I64(8443)),
            ("user_agent.original", Value::from("curl/8")),
            ("gatewise.client_id", Value::from("web-app")),
            ("gatewise.sub", Value::from("alice")),
            ("gatewise.request_id", Value::from("req-7")),
            ("http.response.body.size", Value::I64(512)),
        ] {
            assert_eq!(attr(server, key), Some(&value), "{key}");
        }
        assert_eq!(attr(server, "gatewise.reason"), None);
        assert_eq!(attr(server, "url.query"), None);

        assert_eq!(client.span_kind, SpanKind::Client);
        assert_eq!(client.name, "GET");
        assert_eq!(
            client.span_context.trace_id(),
            server.span_context.trace_id()
        );
        assert_eq!(client.parent_span_id, server.span_context.span_id());
        assert_ne!(client.span_context.span_id(), server.span_context.span_id());
        assert_eq!(
            client.span_context.span_id(),
            client_span_id(server.span_context.span_id())
        );
        // Ends with the server span, lasts upstream_total_us.
        assert_eq!(client.end_time, server.end_time);
        assert_eq!(
            client.start_time,
            start + Duration::from_micros(1_000),
            "3000 µs in total, the last 2000 upstream"
        );
        assert_eq!(
            client.events[0].timestamp,
            start + Duration::from_micros(2_500)
        );
        assert_eq!(
            attr(client, "server.address"),
            Some(&Value::from("127.0.0.1"))
        );
        assert_eq!(attr(client, "server.port"), Some(&Value::I64(9000)));
        assert_eq!(client.status, Status::Unset);
    }

    #[test]
    fn a_refusal_is_an_error_with_its_reason_and_no_client_span() {
        let mut r = proxied();
        r.status = 401;
        r.reason = Some("jwt-expired".into());
        r.upstream = None;
        r.upstream_addr = None;
        r.upstream_first_byte_us = None;
        r.upstream_total_us = None;
        r.parent_span_id = None;
        let spans = spans(&r, &scope());
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.status, Status::error("jwt-expired"));
        assert_eq!(
            attr(s, "gatewise.reason"),
            Some(&Value::from("jwt-expired"))
        );
        assert_eq!(attr(s, "error.type"), Some(&Value::from("jwt-expired")));
        assert_eq!(attr(s, "http.response.status_code"), Some(&Value::I64(401)));
        // The gateway started this trace: a root span.
        assert_eq!(s.parent_span_id, SpanId::INVALID);
        assert!(!s.parent_span_is_remote);
    }

    #[test]
    fn statuses_follow_the_http_conventions() {
        let mut r = proxied();
        r.status = 404;
        let s = spans(&r, &scope());
        assert_eq!(s[0].status, Status::Unset, "the upstream's 404 is not ours");
        assert_eq!(s[1].status, Status::error("404"), "but it is the client's");
        r.status = 503;
        let s = spans(&r, &scope());
        assert_eq!(s[0].status, Status::error("503"));
        assert_eq!(attr(&s[0], "error.type"), Some(&Value::from("503")));
        r.reason = Some("upstream-unavailable".into());
        r.status = 502;
        let s = spans(&r, &scope());
        assert_eq!(s[1].status, Status::error("upstream-unavailable"));
        assert_eq!(attr(&s[1], "http.response.status_code"), None);
    }

    #[test]
    fn unsampled_and_untraced_records_make_no_spans() {
        let mut r = proxied();
        r.sampled = Some(false);
        assert!(spans(&r, &scope()).is_empty());
        r.sampled = None;
        assert!(spans(&r, &scope()).is_empty());
        let mut r = proxied();
        r.span_id = None;
        assert!(spans(&r, &scope()).is_empty());
        r.span_id = Some("0000000000000000".into());
        assert!(spans(&r, &scope()).is_empty());
        let mut r = proxied();
        r.trace_id = Some("not-hex".into());
        assert!(spans(&r, &scope()).is_empty());
        // A damaged parent id makes a root span, not no span.
        let mut r = proxied();
        r.parent_span_id = Some("zz".into());
        assert_eq!(spans(&r, &scope())[0].parent_span_id, SpanId::INVALID);
    }

    #[test]
    fn no_token_or_header_secret_reaches_a_span() {
        let mut r = proxied();
        r.path =
            gatewise_core::calllog::record_path(&format!("/cb?access_token={TOKEN}&page=2"), true);
        let spans = spans(&r, &scope());
        let text = format!("{spans:?}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(!text.contains("c2lnbmF0dXJl"), "{text}");
        // The fingerprint is in the masked query (as in the call log), but
        // not exported on its own.
        assert!(!text.contains("fingerprint"), "{text}");
        assert!(!text.contains("authorization"), "{text}");
        assert_eq!(attr(&spans[0], "url.path"), Some(&Value::from("/cb")));
        let query = attr(&spans[0], "url.query").unwrap().as_str();
        assert!(query.ends_with("&page=2"), "{query}");
    }

    #[test]
    fn odd_methods_and_addresses() {
        let mut r = proxied();
        r.method = "PURGE".into();
        r.route = None;
        r.upstream_addr = Some("[::1]:8080".into());
        let spans = spans(&r, &scope());
        assert_eq!(spans[0].name, "_OTHER");
        assert_eq!(
            attr(&spans[0], "http.request.method_original"),
            Some(&Value::from("PURGE"))
        );
        assert_eq!(attr(&spans[1], "server.address"), Some(&Value::from("::1")));
        assert_eq!(attr(&spans[1], "server.port"), Some(&Value::I64(8080)));
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("h:x"), ("h:x", None));
    }

    #[test]
    fn client_span_ids_are_valid_and_distinct() {
        let a = SpanId::from_hex(GATEWAY_SPAN).unwrap();
        let b = SpanId::from_hex(CLIENT_SPAN).unwrap();
        assert_ne!(client_span_id(a), a);
        assert_ne!(client_span_id(a), client_span_id(b));
        assert_ne!(client_span_id(a), SpanId::INVALID);
    }
}
