//! Data-driven tests of the authorization-request lint over
//! `test_data/authorize/*.txt` (`gatewise doctor authorize-url`).
//!
//! Each fixture has `url:` (the authorization request), any number of
//! `registered:` redirect URIs, an optional `verifier:`, and the codes
//! (`expect:`) and evidence fragments (`expect-evidence:`) the lint must
//! produce. `good--*` fixtures must produce no error or warning;
//! `bad--<RULE>--*` ones a finding of that rule at warn or above. Every
//! check of `diagnose::authorize` must be shown by some fixture.

use gatewise_core::diagnose::authorize;
use gatewise_core::{Report, Severity};
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

struct Fixture {
    url: String,
    registered: Vec<String>,
    verifier: Option<String>,
    codes: Vec<String>,
    evidence: Vec<String>,
}

fn read(text: &str) -> Fixture {
    let mut f = Fixture {
        url: String::new(),
        registered: Vec::new(),
        verifier: None,
        codes: Vec::new(),
        evidence: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match line.split_once(": ") {
            Some(("url", v)) => f.url = v.to_string(),
            Some(("registered", v)) => f.registered.push(v.to_string()),
            Some(("verifier", v)) => f.verifier = Some(v.to_string()),
            Some(("expect", v)) => f.codes.push(v.to_string()),
            Some(("expect-evidence", v)) => f.evidence.push(v.to_string()),
            _ => {}
        }
    }
    f
}

#[test]
fn authorize_fixtures() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data/authorize");
    let mut failures = Vec::new();
    let mut codes_seen = BTreeSet::new();
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let f = read(&fs::read_to_string(&path).unwrap());
        seen += 1;
        let findings = authorize::lint(&f.url, &f.registered, f.verifier.as_deref());
        let report = Report::new(name.clone(), findings);
        codes_seen.extend(report.findings.iter().map(|x| x.code));
        let shown: Vec<String> = report
            .findings
            .iter()
            .map(|x| {
                format!(
                    "{} {} {}: {}\n{}",
                    x.severity, x.rule, x.code, x.title, x.evidence
                )
            })
            .collect();
        let mut fail = |why: String| failures.push(format!("{name}: {why}\n{}", shown.join("\n")));
        if let Some(rest) = name.strip_prefix("bad--") {
            let rule = rest.split("--").next().unwrap_or("");
            if !report
                .findings
                .iter()
                .any(|x| x.rule == rule && x.severity >= Severity::Warn)
            {
                fail(format!("expected a warn or error of rule {rule}"));
            }
        } else if name.starts_with("good--") {
            if report.findings.iter().any(|x| x.severity >= Severity::Warn) {
                fail("expected only info findings".into());
            }
        } else {
            fail("fixture names start with good-- or bad--".into());
        }
        for code in &f.codes {
            if !report.has_code(code) {
                fail(format!("expected code {code}"));
            }
        }
        for text in &f.evidence {
            if !report
                .findings
                .iter()
                .any(|x| x.evidence.contains(text.as_str()) || x.title.contains(text.as_str()))
            {
                fail(format!("expected evidence or title containing {text:?}"));
            }
        }
        if let Some(v) = &f.verifier
            && report
                .findings
                .iter()
                .any(|x| x.evidence.contains(v.as_str()))
        {
            fail("the code_verifier is shown in clear".into());
        }
    }
    assert!(seen > 0, "no fixtures in {}", dir.display());
    let uncovered: Vec<&str> = authorize::CHECKS
        .iter()
        .map(|c| c.code)
        .filter(|c| !codes_seen.contains(c))
        .collect();
    assert!(
        uncovered.is_empty(),
        "checks without a fixture: {uncovered:?}"
    );
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
