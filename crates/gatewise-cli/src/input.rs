//! Reading inputs: files or stdin, capped in size, and secrets from the
//! environment or files.

use anyhow::{Context as _, bail};
use std::io::Read;

/// Reads `path` (or stdin for `-`), refusing more than `max` bytes.
pub(crate) fn read_capped(path: &str, max: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if path == "-" {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            bail!("{path} is a directory, not a file");
        }
        file.take(limit)
            .read_to_end(&mut buf)
            .with_context(|| format!("cannot read {path}"))?;
    }
    if buf.len() > max {
        bail!(
            "{path} is larger than {max} bytes (the --max-input limit); cut the capture to the exchange in question or raise the limit"
        );
    }
    Ok(buf)
}

/// Reads an environment variable (the CLI is the only crate that may).
#[allow(clippy::disallowed_methods)]
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
