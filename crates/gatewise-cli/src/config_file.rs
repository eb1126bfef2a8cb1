//! Reading a configuration file and reporting what its compiler said, the
//! same way for `gatewise serve` / `config validate` and `gatewise authz`.

use anyhow::Context as _;
use std::path::Path;

/// What a configuration compiler said, rendered against the file's name:
/// the value and its warnings, or every error.
pub(crate) type Compiled<T> = Result<(T, Vec<String>), Vec<String>>;

/// Reads `path` and compiles it with `compile`, which renders warnings and
/// errors with the file name it is given. Warnings go to stderr (or fail
/// with `deny_warnings`, after `deny_note` when given); errors become one
/// report ending with `after_errors`.
pub(crate) fn load<T>(
    path: &Path,
    deny_warnings: bool,
    deny_note: Option<&str>,
    after_errors: &str,
    compile: impl FnOnce(&str, &str) -> Compiled<T>,
) -> anyhow::Result<Result<T, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let name = path.display().to_string();
    Ok(match compile(&text, &name) {
        Ok((value, warnings)) => {
            let mut out = String::new();
            for w in &warnings {
                out.push_str(&format!("warning: {w}\n"));
            }
            if deny_warnings && !warnings.is_empty() {
                if let Some(note) = deny_note {
                    out.push_str(note);
                }
                return Ok(Err(out));
            }
            if !out.is_empty() {
                #[allow(clippy::print_stderr)]
                {
                    eprint!("{out}");
                }
            }
            Ok(value)
        }
        Err(errors) => {
            let mut out = String::new();
            for e in &errors {
                out.push_str(&format!("error: {e}\n"));
            }
            out.push_str(&format!(
                "{} error{} in {name}{after_errors}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ));
            Err(out)
        }
    })
}
