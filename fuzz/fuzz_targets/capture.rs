//! The capture parser and every judge on arbitrary bytes.
#![no_main]
use gatewise_core::capture;
use gatewise_core::diagnose::{self, Context, Expect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cap = capture::parse(data);
    for e in [Expect::Token, Expect::Introspection, Expect::Discovery, Expect::Jwks, Expect::Revocation] {
        let _ = diagnose::response(&cap, &Context::new(e));
    }
});
