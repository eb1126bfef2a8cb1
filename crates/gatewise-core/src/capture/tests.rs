use super::*;

fn only_response(input: &[u8]) -> Response {
    let cap = parse(input);
    cap.exchanges.into_iter().find_map(|e| e.response).unwrap()
}

#[test]
fn crlf_and_lf_give_the_same_message() {
    let lf = b"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 2\n\n{}";
    let crlf = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let a = only_response(lf);
    let b = only_response(crlf);
    assert_eq!(a.status, Some(200));
    assert_eq!(a.headers, b.headers);
    assert_eq!(a.body.decoded, b"{}");
    assert_eq!(b.body.decoded, b"{}");
    assert!(a.body.issues.is_empty() && b.body.issues.is_empty());
}

#[test]
fn request_then_response_pair_up() {
    let input = b"POST /token HTTP/1.1\r\nHost: as.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type=client_credentials&scope=a%20b\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"error\":\"invalid_scope\"}";
    let cap = parse(input);
    assert_eq!(cap.kind, CaptureKind::Http);
    assert_eq!(cap.exchanges.len(), 1);
    let ex = &cap.exchanges[0];
    let req = ex.request.as_ref().unwrap();
    assert_eq!(req.form_value("scope").as_deref(), Some("a b"));
    assert_eq!(req.url().as_deref(), Some("https://as.example.com/token"));
    assert_eq!(ex.response.as_ref().unwrap().status, Some(400));
}

#[test]
fn bodiless_request_followed_directly_by_response() {
    let input = b"GET /.well-known/openid-configuration HTTP/1.1\nHost: id.example.com\n\nHTTP/1.1 200 OK\nContent-Type: application/json\n\n{\"issuer\":\"x\"}";
    let cap = parse(input);
    assert_eq!(cap.exchanges.len(), 1);
    assert!(
        cap.exchanges[0]
            .request
            .as_ref()
            .unwrap()
            .body
            .decoded
            .is_empty()
    );
    assert_eq!(
        cap.exchanges[0].response.as_ref().unwrap().body.decoded,
        b"{\"issuer\":\"x\"}"
    );
}

#[test]
fn interim_responses_are_skipped() {
    let input = b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/2 200\r\ncontent-type: application/json\r\n\r\n{}";
    let cap = parse(input);
    assert_eq!(cap.exchanges.len(), 1);
    assert_eq!(
        cap.exchanges[0].response.as_ref().unwrap().version,
        "HTTP/2"
    );
}

#[test]
fn chunked_bodies_are_decoded_and_truncation_noticed() {
    let ok = only_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n");
    assert_eq!(ok.body.decoded, b"{\"a\":1}");
    assert!(ok.body.issues.is_empty());
    let cut =
        only_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n");
    assert!(cut.body.issues.contains(&FramingIssue::ChunkedUnterminated));
    let bad = only_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n");
    assert!(matches!(
        bad.body.issues[0],
        FramingIssue::ChunkedMalformed { .. }
    ));
}

#[test]
fn gzip_is_decoded_when_labelled() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"{\"access_token\":\"x\"}").unwrap();
    let gz = enc.finish().unwrap();
    let mut input = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    input.extend_from_slice(&gz);
    let r = only_response(&input);
    assert_eq!(r.body.decoded, b"{\"access_token\":\"x\"}");
    assert_eq!(r.body.decoded_codings, vec![ContentCoding::Gzip]);
    // Labelled gzip that is not gzip: the header lies.
    let r = only_response(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n{}");
    assert!(matches!(
        r.body.issues[0],
        FramingIssue::ContentDecodingFailed { .. }
    ));
}

#[test]
fn content_length_short_and_long() {
    let r = only_response(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"a\":");
    assert_eq!(
        r.body.issues,
        vec![FramingIssue::ShortBody {
            declared: 50,
            received: 5
        }]
    );
    let r = only_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}\n");
    assert!(
        r.body.issues.is_empty(),
        "trailing newline is not extra data"
    );
    assert_eq!(r.body.decoded, b"{}");
    let r = only_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}");
    assert!(matches!(
        r.body.issues[0],
        FramingIssue::BadContentLength(_)
    ));
}

#[test]
fn folded_and_malformed_header_lines() {
    let cap = parse(b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nnot a header\r\n\r\n{}");
    let r = cap.exchanges[0].response.as_ref().unwrap();
    assert_eq!(r.headers.get("x-long"), Some("a b"));
    assert!(matches!(
        cap.issues[0],
        FramingIssue::MalformedHeaderLine { line: 4, .. }
    ));
}

#[test]
fn bare_bodies_and_empty_input() {
    assert_eq!(parse(b"  \n ").kind, CaptureKind::Empty);
    let cap = parse(b"{\"keys\":[]}");
    assert_eq!(cap.kind, CaptureKind::BareBody);
    assert_eq!(cap.exchanges[0].response.as_ref().unwrap().status, None);
}

#[test]
fn har_files_are_detected() {
    let har = br#"{"log":{"version":"1.2","entries":[
      {"request":{"method":"GET","url":"https://app.example.com/","httpVersion":"HTTP/1.1","headers":[]},
       "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[{"name":"Content-Type","value":"text/html"}],"content":{"text":"<html></html>"}}},
      {"request":{"method":"POST","url":"https://as.example.com/token","httpVersion":"HTTP/1.1","headers":[],"postData":{"mimeType":"application/x-www-form-urlencoded","text":"grant_type=client_credentials"}},
       "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[{"name":"Content-Type","value":"application/json"},{"name":"Content-Encoding","value":"gzip"}],"content":{"text":"{\"access_token\":\"x\",\"token_type\":\"Bearer\"}"}}},
      {"request":{"method":"POST","url":"https://as.example.com/token","httpVersion":"HTTP/1.1","headers":[]},
       "response":{"status":0,"statusText":"","httpVersion":"","headers":[],"content":{}}}
    ]}}"#;
    let cap = parse(har);
    assert_eq!(cap.kind, CaptureKind::Har);
    assert_eq!(cap.exchanges.len(), 3);
    let second = cap.exchanges[1].response.as_ref().unwrap();
    assert!(second.body.predecoded);
    assert!(
        cap.exchanges[2].response.is_none(),
        "status 0 means no response"
    );
}
