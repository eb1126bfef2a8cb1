//! Rendering reports for people (colour only on a terminal), as JSON (the
//! contract in `shared/contracts.md`), as Markdown for tickets, and as JUnit
//! XML for CI pipelines.

use anstyle::{AnsiColor, Style};
use gatewise_core::{Report, Severity, Verdict};
use std::io::Write;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people: worst first, with evidence, cause and fix.
    Human,
    /// Exactly one JSON object on stdout.
    Json,
    /// Markdown to paste into a ticket.
    Markdown,
    /// JUnit XML for a CI pipeline: one test case per finding, a failure
    /// for each error, plus a `verdict` case.
    Junit,
}

fn sev_style(s: Severity) -> Style {
    match s {
        Severity::Error => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        Severity::Warn => Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())),
        Severity::Info => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
    }
}

fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Ok => Style::new().bold().fg_color(Some(AnsiColor::Green.into())),
        Verdict::Warn => sev_style(Severity::Warn),
        Verdict::Error | Verdict::Unreachable => sev_style(Severity::Error),
    }
}

fn mark(s: Severity) -> &'static str {
    match s {
        Severity::Error => "✗",
        Severity::Warn => "!",
        Severity::Info => "·",
    }
}

/// Writes a report to stdout in the chosen format.
pub(crate) fn report(
    report: &Report,
    format: Format,
    extra: Option<(&str, serde_json::Value)>,
) -> anyhow::Result<()> {
    report_with(report, format, extra.into_iter().collect())
}

/// Writes a report to stdout; `extra` members are added to the JSON object
/// (after the contract's `subject`, `verdict` and `findings`).
pub(crate) fn report_with(
    report: &Report,
    format: Format,
    extra: Vec<(&str, serde_json::Value)>,
) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(report)?;
            if let Some(obj) = v.as_object_mut() {
                for (k, x) in extra {
                    obj.insert(k.to_string(), x);
                }
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Format::Markdown => write!(out, "{}", markdown(report))?,
        Format::Human => human(&mut out, report)?,
        Format::Junit => write!(out, "{}", junit(report, None))?,
    }
    Ok(())
}

fn human(out: &mut impl Write, report: &Report) -> anyhow::Result<()> {
    let dim = Style::new().dimmed();
    let bold = Style::new().bold();
    let counts = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let v = verdict_style(report.verdict);
    writeln!(
        out,
        "{bold}{}{bold:#}  {v}{}{v:#}  ({} error, {} warn, {} info)",
        report.subject,
        report.verdict.as_str().to_uppercase(),
        counts(Severity::Error),
        counts(Severity::Warn),
        counts(Severity::Info)
    )?;
    if report.findings.is_empty() {
        writeln!(
            out,
            "\nno findings: the response follows every rule checked"
        )?;
    }
    for f in &report.findings {
        let s = sev_style(f.severity);
        writeln!(out)?;
        writeln!(
            out,
            "{s}{} {:<5}{s:#} {bold}{}{bold:#}",
            mark(f.severity),
            f.severity.as_str(),
            f.title
        )?;
        writeln!(
            out,
            "        {dim}{} {} · {}{dim:#}",
            f.rule, f.code, f.spec
        )?;
        for (label, text) in [
            ("evidence", &f.evidence),
            ("cause", &f.cause),
            ("fix", &f.fix),
        ] {
            if text.is_empty() {
                continue;
            }
            let mut lines = text.lines();
            if let Some(first) = lines.next() {
                writeln!(out, "        {dim}{label:>8}{dim:#}  {first}")?;
            }
            for l in lines {
                writeln!(out, "                  {l}")?;
            }
        }
    }
    Ok(())
}

fn markdown(report: &Report) -> String {
    let mut s = format!(
        "### gatewise doctor: `{}` — **{}**\n\n",
        report.subject,
        report.verdict.as_str()
    );
    if report.findings.is_empty() {
        s.push_str("No findings.\n");
        return s;
    }
    s.push_str("| severity | rule | code | finding |\n|---|---|---|---|\n");
    for f in &report.findings {
        s.push_str(&format!(
            "| {} | {} | `{}` | {} |\n",
            f.severity,
            f.rule,
            f.code,
            f.title.replace('|', "\\|")
        ));
    }
    for f in &report.findings {
        s.push_str(&format!(
            "\n#### {} `{}` ({})\n\n- **Evidence:** {}\n- **Cause:** {}\n- **Fix:** {}\n- **Spec:** {}\n",
            f.rule,
            f.code,
            f.severity,
            f.evidence.replace('\n', " "),
            f.cause,
            f.fix,
            f.spec
        ));
    }
    s
}

/// Text made safe for XML 1.0 content and attribute values: the five
/// special characters escaped, control characters XML cannot carry dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The report as a JUnit XML document (the Jenkins/GitLab/GitHub schema):
/// one `testcase` per finding (`classname` the rule, `name` the code and
/// title) that fails when the finding is an error, and a last `verdict`
/// case. `system_out` (e.g. the exchanges made) goes to the suite's output.
pub(crate) fn junit(report: &Report, system_out: Option<&str>) -> String {
    let failures = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let tests = report.findings.len() + 1;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites name=\"gatewise doctor\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n"
    ));
    s.push_str(&format!(
        "  <testsuite name=\"gatewise doctor: {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
        xml(&report.subject)
    ));
    s.push_str(&format!(
        "    <properties>\n      <property name=\"subject\" value=\"{}\"/>\n      <property name=\"verdict\" value=\"{}\"/>\n    </properties>\n",
        xml(&report.subject),
        report.verdict.as_str()
    ));
    for f in &report.findings {
        let details = format!(
            "{} {} ({}) · {}\nevidence: {}\ncause: {}\nfix: {}",
            f.rule, f.code, f.severity, f.spec, f.evidence, f.cause, f.fix
        );
        s.push_str(&format!(
            "    <testcase classname=\"gatewise.doctor.{}\" name=\"{}: {}\">\n",
            xml(f.rule),
            xml(f.code),
            xml(&f.title)
        ));
        if f.severity == Severity::Error {
            s.push_str(&format!(
                "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                xml(f.code),
                xml(&f.title),
                xml(&details)
            ));
        } else {
            s.push_str(&format!(
                "      <system-out>{}</system-out>\n",
                xml(&details)
            ));
        }
        s.push_str("    </testcase>\n");
    }
    let counts = |sev: Severity| report.findings.iter().filter(|f| f.severity == sev).count();
    s.push_str(&format!(
        "    <testcase classname=\"gatewise.doctor\" name=\"verdict\">\n      <system-out>verdict {} ({} error, {} warn, {} info)</system-out>\n    </testcase>\n",
        report.verdict.as_str(),
        counts(Severity::Error),
        counts(Severity::Warn),
        counts(Severity::Info)
    ));
    if let Some(text) = system_out {
        s.push_str(&format!("    <system-out>{}</system-out>\n", xml(text)));
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewise_core::diagnose::live;

    #[test]
    fn junit_escapes_and_fails_errors_only() {
        let report = Report::new(
            "http://as.test/?a=1&b=<2>",
            vec![
                live::kid_refetched("k\u{1}\"1", "a", "b", false),
                live::password_grant("alice & bob"),
            ],
        );
        let x = junit(&report, Some("GET http://as.test/ → 200"));
        assert!(x.contains("tests=\"3\" failures=\"1\""), "{x}");
        assert!(
            x.contains("gatewise doctor: http://as.test/?a=1&amp;b=&lt;2&gt;"),
            "{x}"
        );
        assert!(
            x.contains("<failure type=\"jwks-kid-never-published\""),
            "{x}"
        );
        assert!(x.contains("kid &quot;k&quot;1"), "{x}");
        assert!(!x.contains('\u{1}'));
        assert_eq!(x.matches("<failure").count(), 1);
        assert!(x.contains("<property name=\"verdict\" value=\"error\"/>"));
    }
}
