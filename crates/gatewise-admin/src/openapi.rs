//! The OpenAPI 3.1 document of the admin API, served at
//! `/api/v1/openapi.json`. Written by hand next to the handlers; a test
//! checks that every route is in it and every parameter the handlers read
//! is declared.

use serde_json::{Value, json};

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
}

/// The document.
pub fn document() -> Value {
    let problem = json!({"description": "An RFC 9457 problem document", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    let secured = json!([{"bearer": []}]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gatewise admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The call log, analytics and state of a gatewise gateway. Served on the admin listener ([admin] listen, loopback by default). When a token is configured, every route but /live and /ready needs `Authorization: Bearer <token>`."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "code": {"type": "string", "description": "stable error code: bad-request, not-found, unauthorized, call-log-disabled, store-error, internal"}}},
                "RateLimit": {"type": "object", "description": "A route's rate limit: its policy and what its limiter decided since it was built (start or the last reload)", "required": ["route", "key", "requests", "per_ms", "burst", "allowed", "limited", "keys"], "properties": {
                    "route": {"type": "string"},
                    "key": {"type": "string", "description": "what the limit is counted per: client_id, sub, client_ip or header:<name>"},
                    "requests": {"type": "integer", "description": "sustained requests per period"},
                    "per_ms": {"type": "integer", "description": "the period, ms"},
                    "burst": {"type": "integer", "description": "requests allowed at once"},
                    "allowed": {"type": "integer", "description": "requests allowed"},
                    "limited": {"type": "integer", "description": "requests refused with 429"},
                    "keys": {"type": "integer", "description": "keys (clients, subjects, addresses, header values) tracked now"}}},
                "Cache": {"type": "object", "description": "A cache of the gateway: the verified-token cache (JWT signature checks, shared by every route) or an introspector's result cache", "required": ["cache", "name", "entries", "capacity", "hits", "misses"], "properties": {
                    "cache": {"type": "string", "enum": ["verified_tokens", "introspection"]},
                    "name": {"type": "string", "description": "the introspector's name; empty for verified_tokens"},
                    "entries": {"type": "integer", "description": "entries held now"},
                    "capacity": {"type": "integer", "description": "most entries it holds"},
                    "hits": {"type": "integer", "description": "lookups answered from the cache"},
                    "misses": {"type": "integer", "description": "lookups that were not: a signature check or an introspection call followed"}}},
                "SpanExport": {"type": "object", "description": "The OTLP span exporter's counters since the start", "required": ["queued", "exported", "dropped", "failed"], "properties": {
                    "queued": {"type": "integer", "description": "calls waiting in the export queue now"},
                    "exported": {"type": "integer", "description": "spans the collector accepted"},
                    "dropped": {"type": "integer", "description": "sampled calls whose spans were lost because the queue was full"},
                    "failed": {"type": "integer", "description": "spans lost to exports that failed or timed out"}}},
                "TraceStep": {"type": "object", "required": ["step", "outcome", "micros"], "properties": {
                    "step": {"type": "string", "description": "route, body_limit, jwt, introspection, scope, rate_limit, upstream, inspect, client_closed, response_body"},
                    "outcome": {"type": "string", "enum": ["ok", "refused", "error", "skipped"]},
                    "reason": {"type": "string"}, "detail": {"type": "string"}, "micros": {"type": "integer"}}},
                "Call": {"type": "object", "required": ["id", "v", "start_ms", "request_id", "method", "path", "status", "total_us"], "properties": {
                    "id": {"type": "integer"}, "v": {"type": "integer", "description": "record version"},
                    "start_ms": {"type": "integer", "description": "Unix ms"}, "request_id": {"type": "string"},
                    "trace_id": {"type": "string"}, "route": {"type": "string"}, "upstream": {"type": "string"},
                    "upstream_addr": {"type": "string"}, "method": {"type": "string"},
                    "path": {"type": "string", "description": "without the query string unless call_log.keep_query"},
                    "status": {"type": "integer"}, "error": {"type": "boolean"}, "bytes_in": {"type": "integer"}, "bytes_out": {"type": "integer"},
                    "total_us": {"type": "integer"}, "auth_us": {"type": "integer"}, "upstream_first_byte_us": {"type": "integer"},
                    "upstream_total_us": {"type": "integer"}, "client_ip": {"type": "string"}, "issuer": {"type": "string"},
                    "kid": {"type": "string"}, "client_id": {"type": "string"}, "sub": {"type": "string"},
                    "scopes": {"type": "array", "items": {"type": "string"}},
                    "token_fingerprint": {"type": "string", "description": "first 8 hex digits of SHA-256 of the token; never the token"},
                    "reason": {"type": "string", "description": "reason code of a refusal (jwt-expired, route-not-found, ...)"},
                    "trace": {"type": "array", "items": {"$ref": "#/components/schemas/TraceStep"}},
                    "findings": {"type": "array", "items": {"type": "object", "properties": {"rule": {"type": "string"}, "code": {"type": "string"}, "severity": {"type": "string"}}}},
                    "request_headers": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}, "description": "[name, value] pairs, secrets masked"},
                    "response_headers": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}}}
            }
        },
        "paths": {
            "/live": {"get": {"summary": "The process answers", "responses": {"200": {"description": "live"}}}},
            "/ready": {"get": {"summary": "Every issuer has keys", "responses": {
                "200": {"description": "ready"},
                "503": {"description": "issuers without keys, with their last error"}}}},
            "/api/v1/calls": {"get": {
                "summary": "Calls, newest first",
                "security": secured,
                "parameters": [
                    param("from", "start: Unix ms, or a duration back from now (15m, 2h, 7d)"),
                    param("until", "end, exclusive: Unix ms or a duration back from now"),
                    param("route", "route name"),
                    param("status", "a status (401), a class (4xx) or `error`"),
                    param("reason", "reason code, e.g. jwt-expired"),
                    param("client_id", "the token's client_id"),
                    param("sub", "the token's sub"),
                    param("issuer", "issuer name"),
                    param("method", "HTTP method"),
                    param("request_id", "request id"),
                    param("finding", "rule id of an inspector finding the call has, e.g. TR-04"),
                    {"name": "limit", "in": "query", "required": false, "description": "page size, default 50, at most 1000", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}},
                    param("after", "cursor: `next` of the previous page")
                ],
                "responses": {
                    "200": {"description": "a page", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
                        "next": {"type": ["string", "null"]}}}}}},
                    "400": problem, "401": problem, "503": problem}}},
            "/api/v1/calls/{request_id}": {"get": {
                "summary": "One call with its decision trace",
                "security": secured,
                "parameters": [{"name": "request_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the newest call with this request id", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Call"}}}},
                    "404": problem, "401": problem, "503": problem}}},
            "/api/v1/calls/{request_id}/diagnosis": {"get": {
                "summary": "Diagnose this call: the doctor's rules over what was recorded (reason code explained with cause and fix, upstream errors, inspector findings)",
                "security": secured,
                "parameters": [{"name": "request_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "findings (rule, code, severity, title, evidence, spec, cause, fix) and a verdict", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "404": problem, "401": problem, "503": problem}}},
            "/api/v1/stats": {"get": {
                "summary": "Calls, error rate, latency percentiles and top reason codes per minute or hour; the clients with the most errors over the range",
                "security": secured,
                "parameters": [
                    param("from", "start (default one hour ago)"),
                    param("until", "end, exclusive (default now)"),
                    {"name": "bucket", "in": "query", "required": false, "schema": {"type": "string", "enum": ["minute", "hour"]}},
                    param("route", "only this route")
                ],
                "responses": {"200": {"description": "buckets without calls are left out"}, "400": problem, "401": problem, "503": problem}}},
            "/api/v1/state": {"get": {
                "summary": "Configuration version and reloads, upstream targets, each issuer's keys (kids, age, last error, refetches, clock skew), counters, rate limits and caches, the call log's writer, the OTLP span exporter",
                "security": secured,
                "responses": {"200": {"description": "state", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "version": {"type": "string"},
                    "gateway": {"type": ["object", "null"], "description": "null when no gateway is attached", "properties": {
                        "config_version": {"type": "integer"}, "last_reload": {"type": ["object", "null"]},
                        "routes": {"type": "array", "items": {"type": "string"}},
                        "upstreams": {"type": "array", "items": {"type": "object"}},
                        "issuers": {"type": "array", "items": {"type": "object"}},
                        "counters": {"type": "object"},
                        "inspector_findings": {"type": "array"}, "inspector_repairs": {"type": "array"},
                        "rate_limits": {"type": "array", "description": "the routes with a rate limit, in configuration order", "items": {"$ref": "#/components/schemas/RateLimit"}},
                        "caches": {"type": "array", "description": "the verified-token cache, then each introspector's", "items": {"$ref": "#/components/schemas/Cache"}}}},
                    "call_log": {"type": ["object", "null"], "description": "the call log's writer: queued, written, spooled, replayed, dropped, store_errors, spool_bytes, backlog, deferring (the indexer waits for busy CPUs; records wait in the spool)"},
                    "span_export": {"anyOf": [{"$ref": "#/components/schemas/SpanExport"}, {"type": "null"}], "description": "the OTLP span exporter; null when [telemetry.otlp] is not configured"}}}}}},
                    "401": problem}}},
            "/api/v1/logging": {
                "get": {"summary": "The log filter in force", "security": secured,
                        "responses": {"200": {"description": "{\"filter\": \"info\"}"}, "401": problem, "404": problem}},
                "put": {"summary": "Change the log filter without a restart (tracing EnvFilter directives)", "security": secured,
                        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["filter"], "properties": {"filter": {"type": "string", "examples": ["gatewise_gateway=debug,info"]}}}}}},
                        "responses": {"200": {"description": "the filter now in force"}, "400": problem, "401": problem, "404": problem}}},
            "/metrics": {"get": {"summary": "Prometheus metrics in OpenMetrics text: requests by route, status and reason; latency histograms; JWKS fetches, kid misses, cache hits; rate-limit decisions by route; cache lookups (hit, miss) and entries; call-log queue, spool and drops; OTLP spans exported, dropped and failed, and the export queue; inspector findings", "security": secured, "responses": {"200": {"description": "application/openmetrics-text"}, "401": problem}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "security": secured, "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_parameter_is_documented() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/live",
            "/ready",
            "/api/v1/calls",
            "/api/v1/calls/{request_id}",
            "/api/v1/calls/{request_id}/diagnosis",
            "/api/v1/stats",
            "/api/v1/state",
            "/api/v1/openapi.json",
            "/metrics",
            "/api/v1/logging",
        ] {
            assert!(paths.contains_key(p), "{p} is not documented");
        }
        let declared = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        // The handlers' parameter structs refuse unknown fields, so these
        // lists are exactly what they accept.
        let calls = [
            "from",
            "until",
            "route",
            "status",
            "reason",
            "client_id",
            "sub",
            "issuer",
            "method",
            "request_id",
            "finding",
            "limit",
            "after",
        ];
        assert_eq!(declared("/api/v1/calls"), calls);
        assert_eq!(
            declared("/api/v1/stats"),
            ["from", "until", "bucket", "route"]
        );
    }

    /// The property names of a component schema, sorted.
    fn properties(doc: &Value, schema: &str) -> Vec<String> {
        let mut names: Vec<String> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut names: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    #[test]
    fn the_state_schemas_match_what_the_gateway_serializes() {
        use gatewise_gateway::metrics::CacheStats;
        use gatewise_gateway::ratelimit::{LimiterStats, RouteRateLimit};
        let doc = document();
        let limit = RouteRateLimit::new(
            "r",
            &gatewise_config::model::RateLimit {
                key: gatewise_config::model::RateKey::ClientIp,
                requests: 1,
                per: std::time::Duration::from_secs(1),
                burst: 1,
            },
            LimiterStats::default(),
        );
        assert_eq!(
            keys(&serde_json::to_value(limit).unwrap()),
            properties(&doc, "RateLimit")
        );
        let cache = CacheStats {
            cache: "verified_tokens",
            name: String::new(),
            entries: 0,
            capacity: 0,
            hits: 0,
            misses: 0,
        };
        assert_eq!(
            keys(&serde_json::to_value(cache).unwrap()),
            properties(&doc, "Cache")
        );
    }
}
