//! `compile` answers any text with a config or errors, never a panic.

mod support;

use gatewise_config::{EXAMPLE, compile};

/// Every prefix of the example (as shipped, and with its optional lines
/// uncommented), and the example with each line removed in turn: syntax
/// errors, missing keys and broken references of all kinds.
#[test]
fn damaged_files_give_errors_with_positions_not_panics() {
    let uncommented = support::example_with_optional_lines();
    for example in [EXAMPLE, uncommented.as_str()] {
        for text in &damaged(example) {
            if let Err(errors) = compile(text) {
                assert!(!errors.is_empty());
                for e in &errors {
                    assert!(e.line.is_some(), "no line for {e} in:\n{text}");
                    assert!(!e.message.is_empty());
                }
            }
        }
    }
}

fn damaged(example: &str) -> Vec<String> {
    let lines: Vec<&str> = example.lines().collect();
    let mut texts: Vec<String> = example
        .char_indices()
        .map(|(i, _)| example[..i].to_owned())
        .collect();
    for skip in 0..lines.len() {
        let text: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        texts.push(text.join("\n"));
    }
    texts
}
