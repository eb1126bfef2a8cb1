//! Rendering reports for people (colour only on a terminal), as JSON (the
//! contract in `shared/contracts.md`), and as Markdown for tickets.

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
    let mut out = anstream::stdout().lock();
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(report)?;
            if let (Some((k, x)), Some(obj)) = (extra, v.as_object_mut()) {
                obj.insert(k.to_string(), x);
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Format::Markdown => write!(out, "{}", markdown(report))?,
        Format::Human => human(&mut out, report)?,
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
