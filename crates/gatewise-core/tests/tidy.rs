//! Architecture invariants, checked as tests (rust-analyzer's tidy idea):
//! the core does no I/O, reads no clock and depends on no runtime.

use std::path::{Path, PathBuf};
use std::process::Command;

fn core_src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Architecture Invariant: gatewise-core performs no I/O and never reads
/// the clock or the environment; time and bytes are parameters.
#[test]
fn core_has_no_io() {
    let banned = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "SystemTime::now",
        "Instant::now",
        "std::thread",
        "tokio",
        "println!",
        "eprintln!",
    ];
    let mut files = Vec::new();
    rust_files(&core_src(), &mut files);
    assert!(!files.is_empty());
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for b in banned {
                if line.contains(b) {
                    hits.push(format!("{}:{}: {b}", f.display(), i + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "I/O in gatewise-core:\n{}",
        hits.join("\n")
    );
}

/// Architecture Invariant: no crate that does network, runtime or database
/// work is a normal dependency of gatewise-core.
#[test]
fn core_depends_on_no_runtime() {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "gatewise-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let banned = [
        "tokio ",
        "hyper ",
        "reqwest ",
        "sqlx ",
        "rusqlite ",
        "redis ",
        "mio ",
        "axum ",
    ];
    let found: Vec<&str> = tree
        .lines()
        .filter(|l| banned.iter().any(|b| l.starts_with(b)))
        .collect();
    assert!(found.is_empty(), "gatewise-core depends on: {found:?}");
}
