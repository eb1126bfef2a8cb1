//! `docs/findings.md` is generated from the code; this test keeps it true.
//! Run with `UPDATE_EXPECT=1` to rewrite it after adding or changing a check.

use std::path::PathBuf;

#[test]
fn findings_catalogue_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/findings.md");
    let want = gatewise_core::catalogue::markdown();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/findings.md is out of date: run `UPDATE_EXPECT=1 cargo test -p gatewise-core --test catalogue`"
    );
}
