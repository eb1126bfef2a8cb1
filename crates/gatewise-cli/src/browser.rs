//! Opening a URL in the desktop's browser (the demo's dashboard, the
//! doctor's interactive sign-in).

/// Opens `url` in the desktop's browser when there is one (a terminal with
/// a display, or macOS); does nothing otherwise, and never fails.
pub(crate) fn open(url: &str) {
    use std::io::IsTerminal as _;
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| crate::input::env(v).is_some_and(|d| !d.is_empty()));
    let opener = if cfg!(target_os = "macos") {
        Some("open")
    } else if has_display {
        Some("xdg-open")
    } else {
        None
    };
    if let Some(cmd) = opener
        && std::io::stderr().is_terminal()
    {
        let _ = std::process::Command::new(cmd)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}
