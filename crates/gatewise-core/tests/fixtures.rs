//! Data-driven tests over `test_data/responses/<expect>/*.http`.
//!
//! - `good--*.http` must produce no error-level finding.
//! - `bad--<RULE>--*.http` must produce a finding with rule `<RULE>` at its
//!   check's severity, at warn or above unless the rule's checks are info.
//! - Every fixture's findings are snapshotted (insta; `cargo insta review`
//!   or `INSTA_UPDATE=always` to accept changes).
//!
//! A sidecar `<name>.opts` may set `request_scope=`, `issuer=` and `now=`.

use gatewise_core::capture;
use gatewise_core::diagnose::{self, Context, Expect};
use gatewise_core::{Report, Severity};
use std::fs;
use std::path::Path;

fn context(expect: Expect, http: &Path) -> Context {
    let mut ctx = Context::new(expect);
    ctx.now = Some(1_767_225_600); // 2026-01-01T00:00:00Z
    if let Ok(opts) = fs::read_to_string(http.with_extension("opts")) {
        for line in opts.lines() {
            match line.split_once('=') {
                Some(("request_scope", v)) => ctx.request_scope = Some(v.trim().to_string()),
                Some(("issuer", v)) => ctx.issuer = Some(v.trim().to_string()),
                Some(("now", v)) => ctx.now = v.trim().parse().ok(),
                _ => {}
            }
        }
    }
    ctx
}

fn render(report: &Report) -> String {
    let mut s = format!("verdict: {}\n", report.verdict.as_str());
    for f in &report.findings {
        s.push_str(&format!(
            "{} {} {}: {}\n",
            f.severity, f.rule, f.code, f.title
        ));
    }
    s
}

fn judge(path: &Path) -> (Report, Expect) {
    let expect_name = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("token");
    let expect = Expect::parse(expect_name).unwrap_or(Expect::Token);
    let bytes = fs::read(path).unwrap();
    let capture = capture::parse(&bytes);
    let findings = diagnose::response(&capture, &context(expect, path));
    (Report::new(path.display().to_string(), findings), expect)
}

#[test]
fn fixtures() {
    let mut rules_seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut seen = 0;
    insta::glob!("../test_data/responses", "*/*.http", |path| {
        seen += 1;
        let (report, expect) = judge(path);
        rules_seen.extend(report.findings.iter().map(|f| f.rule));
        let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(rest) = name.strip_prefix("bad--") {
            let rule = rest.split("--").next().unwrap_or("");
            if !report.has_rule(rule) {
                failures.push(format!(
                    "{}/{name}: expected rule {rule}, got:\n{}",
                    expect.name(),
                    render(&report)
                ));
            }
        } else if name.starts_with("good--") {
            if report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Error)
            {
                failures.push(format!(
                    "{}/{name}: expected no error, got:\n{}",
                    expect.name(),
                    render(&report)
                ));
            }
        } else {
            failures.push(format!("{name}: fixture names start with good-- or bad--"));
        }
        insta::assert_snapshot!(render(&report));
    });
    assert!(seen > 0, "no fixtures found");
    // Every rule the response judges can report is shown by some fixture
    // (JWT and explain rules are covered by tests/jwt.rs and explain's tests;
    // live-exchange rules, which no capture can show, by gatewise-probe's tests).
    let uncovered: std::collections::BTreeSet<&str> = gatewise_core::catalogue::checks()
        .into_iter()
        .filter(|c| !c.code.starts_with("jwt-") && !c.code.starts_with("explain-"))
        .filter(|c| !gatewise_core::diagnose::transport::CHECKS.contains(c))
        // Authorization-request lints (tests/authorize.rs has their fixtures)
        // and checks across several live exchanges judge no response.
        .filter(|c| !gatewise_core::diagnose::authorize::CHECKS.contains(c))
        .filter(|c| !gatewise_core::diagnose::live::CHECKS.contains(c))
        // Recorded calls, not responses: tested in diagnose::call.
        .filter(|c| !gatewise_core::diagnose::call::CHECKS.contains(c))
        // Authorization responses (redirect query strings): tested in diagnose::callback.
        .filter(|c| !gatewise_core::diagnose::callback::CHECKS.contains(c))
        // Device authorization responses and polling: tested in diagnose::device.
        .filter(|c| !gatewise_core::diagnose::device::CHECKS.contains(c))
        .map(|c| c.rule)
        .filter(|r| !rules_seen.contains(r))
        .collect();
    assert!(
        uncovered.is_empty(),
        "rules without a fixture: {uncovered:?}"
    );
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
