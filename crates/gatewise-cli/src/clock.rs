//! The one place that reads the wall clock; everything else takes time as a parameter.

/// Seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
