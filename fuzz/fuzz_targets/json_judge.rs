//! The JSON judges: arbitrary bytes as the body of a labelled JSON response.
#![no_main]
use gatewise_core::capture;
use gatewise_core::diagnose::{self, Context, Expect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".to_vec();
    input.extend_from_slice(data);
    let cap = capture::parse(&input);
    for e in [Expect::Token, Expect::Introspection, Expect::Discovery, Expect::Jwks] {
        let _ = diagnose::response(&cap, &Context::new(e));
    }
});
