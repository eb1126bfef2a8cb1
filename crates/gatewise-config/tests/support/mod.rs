//! Helpers shared by the integration tests (`mod support;`).
#![allow(dead_code)]

use gatewise_config::{Compiled, compile};

/// Compiles, and fails the test with the listing when there are errors.
pub(crate) fn ok(text: &str) -> Compiled {
    match compile(text) {
        Ok(c) => c,
        Err(errors) => panic!("expected no errors, got:\n{}", listing(&errors)),
    }
}

/// Compiles, expecting errors, and gives them as displayed with the file
/// name `gatewise.toml`, one per entry.
pub(crate) fn errors(text: &str) -> Vec<String> {
    match compile(text) {
        Ok(c) => panic!("expected errors, it compiled: {c:#?}"),
        Err(errors) => errors
            .iter()
            .map(|e| e.display_with("gatewise.toml").to_string())
            .collect(),
    }
}

/// Warnings of a file that compiles, displayed like errors.
pub(crate) fn warnings(text: &str) -> Vec<String> {
    ok(text)
        .warnings
        .iter()
        .map(|w| w.display_with("gatewise.toml").to_string())
        .collect()
}

fn listing(errors: &[gatewise_config::ConfigError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}\n", e.display_with("gatewise.toml")))
        .collect()
}

/// A valid file to build on: one issuer, one upstream, one route using both.
pub(crate) const BASE: &str = r#"
[[issuers]]
name = "main"
issuer = "https://as.example.com"
jwks_uri = "https://as.example.com/jwks.json"

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000"]

[[routes]]
path_prefix = "/api"
upstream = "api"
[routes.jwt]
issuers = ["main"]
audiences = ["https://api.example.com"]
"#;

/// The example file with its commented-out optional lines uncommented
/// (except the alternative key sources, which are exclusive).
///
/// A commented-out table (a `# [table]` or `# [[array]]` line) is
/// uncommented with the `# ` lines that follow it, up to the first line that
/// is not such a comment; other lines are uncommented when they set one of
/// the optional keys below.
pub(crate) fn example_with_optional_lines() -> String {
    const OPTIONAL: [&str; 10] = [
        "ca_file",
        "health_check",
        "host =",
        "inspect",
        "repair",
        "token_cookie",
        "token_query",
        "request_set",
        "response_add",
        "response_set",
    ];
    let mut in_block = false;
    gatewise_config::EXAMPLE
        .lines()
        .map(|line| {
            let rest = line.strip_prefix("# ");
            in_block = match rest {
                Some(rest) => in_block || rest.starts_with('['),
                None => false,
            };
            let uncommented =
                rest.filter(|rest| in_block || OPTIONAL.iter().any(|o| rest.starts_with(o)));
            format!("{}\n", uncommented.unwrap_or(line))
        })
        .collect()
}
