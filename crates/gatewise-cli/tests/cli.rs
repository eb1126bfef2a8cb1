//! The built binary, run as users and scripts run it: exit codes, the JSON
//! contract, stdin, and refusals of bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatewise"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).current_dir(root()).output().unwrap()
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn readme_example_exits_1_with_the_rule() {
    let out = run(&[
        "doctor",
        "response",
        "examples/github-form-encoded.http",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["verdict"], "error");
    assert_eq!(v["subject"], "examples/github-form-encoded.http");
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "TR-02");
    for k in [
        "rule", "code", "severity", "title", "evidence", "spec", "cause", "fix",
    ] {
        assert!(f[k].is_string(), "finding member {k} missing");
    }
    // The token itself never appears.
    let raw = std::fs::read_to_string(root().join("examples/github-form-encoded.http")).unwrap();
    let token = raw
        .split("access_token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(token));
}

#[test]
fn good_response_exits_0_and_warn_exits_0() {
    let good = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n{\"access_token\":\"abc\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    let out = run_stdin(&["doctor", "response", "-", "--format", "json"], good);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["verdict"], "ok");
    let warn = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"access_token\":\"abc\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    let out = run_stdin(&["doctor", "response", "-", "--format", "json"], warn);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["verdict"], "warn");
}

#[test]
fn usage_errors_and_unreadable_input_exit_2_with_one_line() {
    for args in [
        vec!["doctor", "response", "/nonexistent/capture.http"],
        vec!["doctor", "response", "crates"],
        vec!["doctor", "response", "x", "--expect", "nonsense"],
        vec!["doctor", "nonsense"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(&["doctor", "response", "/nonexistent/capture.http"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/capture.http"));
}

#[test]
fn oversized_input_is_refused() {
    let out = run_stdin(
        &["doctor", "response", "-", "--max-input", "100"],
        &[b'a'; 200],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 100 bytes"));
}

#[test]
fn empty_input_is_a_finding() {
    let out = run_stdin(&["doctor", "response", "-", "--format", "json"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["findings"][0]["rule"], "HT-05");
}

#[test]
fn jwt_from_stdin_with_jwks_and_json() {
    // The doctor reads a token from stdin and judges it; garbage gives a finding.
    let out = run_stdin(&["doctor", "jwt", "-", "--format", "json"], b"not.a.jwt\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["findings"][0]["code"], "jwt-malformed");
    let out = run(&[
        "doctor",
        "jwt",
        "abc.def.ghi",
        "--secret-env",
        "GATEWISE_TEST_UNSET_VAR",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn markdown_and_human_formats() {
    let out = run(&[
        "doctor",
        "response",
        "examples/expires-in-string.http",
        "--format",
        "markdown",
    ]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("### gatewise doctor"), "{s}");
    assert!(s.contains("TR-06"));
    let out = run(&["doctor", "response", "examples/expires-in-string.http"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        !s.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );
    assert!(s.contains("expires_in is the string"));
}

#[test]
fn rules_lists_the_catalogue() {
    let out = run(&["doctor", "rules", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["subject"], "rules");
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    assert!(v["rules"].as_array().unwrap().len() > 100);
    let md = run(&["doctor", "rules"]);
    let on_disk = std::fs::read_to_string(root().join("docs/findings.md")).unwrap();
    assert_eq!(String::from_utf8_lossy(&md.stdout), on_disk);
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gatewise "));
    let out = run(&["doctor", "response", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--expect"));
}

#[test]
fn demo_check_runs_the_demo_end_to_end() {
    let out = run(&["demo", "--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Four calls, then the call log read back: the calls, the diagnosis,
    // the metrics, the dashboard page.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        8,
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("401 \"jwt-expired\""), "{stdout}");
    assert!(
        stdout.contains("diagnosis of the expired-token call: call-jwt-expired"),
        "{stdout}"
    );
}
