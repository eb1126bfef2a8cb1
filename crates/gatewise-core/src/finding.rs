//! Findings: the one shape every diagnosis produces (see `shared/contracts.md`).
//!
//! A [`Check`] is the static description of one rule violation or
//! classification: its rule id from `oauth-rules.md`, a stable kebab-case
//! code, a fixed severity and the specification section. A [`Finding`] is one
//! occurrence of a check, with the evidence that shows it and the likely cause
//! and fix. Every `Check` is listed in [`crate::catalogue::CHECKS`], from which
//! `docs/findings.md` is generated.

use serde::Serialize;
use std::fmt;

/// How bad a finding is. Ordered: `Info < Warn < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational, or a legal provider quirk. Never fails anything.
    Info,
    /// Breaks a SHOULD, or is a common cause of interop failures.
    Warn,
    /// Breaks a MUST, or reliably breaks a conforming client.
    Error,
}

impl Severity {
    /// The lower-case name used in JSON and human output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The static description of a check. Codes are stable and never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Rule id from `oauth-rules.md` section 1 (or a gatewise id in the same style).
    pub rule: &'static str,
    /// Kebab-case, unique, never renamed.
    pub code: &'static str,
    /// Fixed severity of every finding of this check.
    pub severity: Severity,
    /// The specification section, e.g. `RFC 6749 §5.1`.
    pub spec: &'static str,
    /// One line for the catalogue: what the check detects.
    pub summary: &'static str,
}

/// One occurrence of a [`Check`], as printed by the doctor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Rule id, e.g. `TR-04`.
    pub rule: &'static str,
    /// Stable kebab-case code, e.g. `token-access-token-missing`.
    pub code: &'static str,
    /// Severity of the check.
    pub severity: Severity,
    /// One line a person reads first.
    pub title: String,
    /// What in the exchange shows it, secrets masked.
    pub evidence: String,
    /// Specification section.
    pub spec: &'static str,
    /// The most likely root cause, in plain words.
    pub cause: String,
    /// What to change, and where.
    pub fix: String,
}

impl Finding {
    /// Starts a finding of `check` with its title; evidence, cause and fix
    /// are filled in with the builder methods.
    pub fn new(check: &'static Check, title: impl Into<String>) -> Self {
        Finding {
            rule: check.rule,
            code: check.code,
            severity: check.severity,
            title: title.into(),
            evidence: String::new(),
            spec: check.spec,
            cause: String::new(),
            fix: String::new(),
        }
    }

    /// Sets the evidence.
    #[must_use]
    pub fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = evidence.into();
        self
    }

    /// Sets the likely cause.
    #[must_use]
    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = cause.into();
        self
    }

    /// Sets the fix.
    #[must_use]
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }
}

/// The overall judgement of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No finding above `info`.
    Ok,
    /// The worst finding is a `warn`.
    Warn,
    /// At least one `error` finding.
    Error,
    /// The target could not be reached at all.
    Unreachable,
}

impl Verdict {
    /// The verdict of a list of findings (never `Unreachable`: only the
    /// network layer can say that).
    pub fn of(findings: &[Finding]) -> Verdict {
        match findings.iter().map(|f| f.severity).max() {
            Some(Severity::Error) => Verdict::Error,
            Some(Severity::Warn) => Verdict::Warn,
            _ => Verdict::Ok,
        }
    }

    /// The lower-case name used in JSON and human output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Error => "error",
            Verdict::Unreachable => "unreachable",
        }
    }

    /// The process exit code `shared/contracts.md` gives this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Ok | Verdict::Warn => 0,
            Verdict::Error => 1,
            Verdict::Unreachable => 3,
        }
    }
}

/// What the doctor prints: the subject, the verdict and the findings, worst first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// What was examined: a URL, a file name, or `-` for stdin.
    pub subject: String,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Findings, worst first; equal severities keep the order they were found in.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Builds a report, sorting the findings worst first (stable).
    pub fn new(subject: impl Into<String>, mut findings: Vec<Finding>) -> Self {
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        Report {
            subject: subject.into(),
            verdict: Verdict::of(&findings),
            findings,
        }
    }

    /// True when some finding has this rule id.
    pub fn has_rule(&self, rule: &str) -> bool {
        self.findings.iter().any(|f| f.rule == rule)
    }

    /// True when some finding has this code.
    pub fn has_code(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }
}
