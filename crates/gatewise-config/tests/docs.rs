//! `docs/config.md` stays in step with the file format.

mod support;

const DOCS: &str = include_str!("../../../docs/config.md");

/// The fenced TOML blocks of the reference, in order.
fn toml_blocks() -> Vec<&'static str> {
    DOCS.split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect()
}

#[test]
fn the_complete_example_compiles_without_warnings() {
    let complete = DOCS.split("## A complete example").nth(1).unwrap();
    let block = complete
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert_eq!(support::ok(block).warnings, []);
}

/// The `[[introspectors]]` and `[routes.introspection]` snippets work
/// together, without warnings.
#[test]
fn the_introspection_snippets_compile_together() {
    let blocks = toml_blocks();
    let find = |header: &str| {
        blocks
            .iter()
            .find(|b| b.starts_with(header))
            .unwrap_or_else(|| panic!("no snippet starting with {header}"))
    };
    let text = format!(
        "{}\n[[upstreams]]\nname = \"api\"\ntargets = [\"http://127.0.0.1:9000\"]\n\n{}",
        find("[[introspectors]]"),
        find("[[routes]]\nname = \"legacy\""),
    );
    assert_eq!(support::ok(&text).warnings, []);
}

/// Each snippet is valid TOML.
#[test]
fn snippets_are_valid_toml() {
    let blocks = toml_blocks();
    assert!(blocks.len() >= 8, "{}", blocks.len());
    for block in blocks {
        if let Err(e) = toml::de::DeTable::parse(block) {
            panic!("invalid TOML in docs/config.md: {e}\n{block}");
        }
    }
}

/// Every key of the example file (with its optional lines) is documented.
#[test]
fn every_key_of_the_example_is_documented() {
    let text = support::example_with_optional_lines();
    let doc = toml::de::DeTable::parse(&text).unwrap();
    let mut keys = Vec::new();
    collect_keys(&toml::de::DeValue::Table(doc.into_inner()), &mut keys);
    assert!(keys.len() > 40, "{keys:?}");
    let header_names = ["X-Forwarded-By", "X-Env"];
    for key in keys {
        if header_names.contains(&key.as_str()) {
            continue;
        }
        // As a row (`key`, `certificates[].key`) or a table header
        // (`[[routes]]`, `[routes.jwt]`).
        let documented = DOCS.contains(&format!("| `{key}` |"))
            || DOCS.contains(&format!(".{key}` |"))
            || DOCS.contains(&format!("{key}]"));
        assert!(documented, "`{key}` has no row in docs/config.md");
    }
}

fn collect_keys(value: &toml::de::DeValue<'_>, out: &mut Vec<String>) {
    match value {
        toml::de::DeValue::Table(t) => {
            for (k, v) in t.iter() {
                out.push(k.get_ref().to_string());
                collect_keys(v.get_ref(), out);
            }
        }
        toml::de::DeValue::Array(a) => {
            for v in a.iter() {
                collect_keys(v.get_ref(), out);
            }
        }
        _ => {}
    }
}
