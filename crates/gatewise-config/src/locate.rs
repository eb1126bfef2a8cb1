//! TOML paths (`routes[2].jwt.audiences`) and where their values are in the
//! file.
//!
//! The file is parsed once into `toml`'s spanned document (`DeTable`); an
//! [`Index`] records the span of every key and value under its path. Errors
//! then go both ways: a path found by validation is given a line, and a
//! byte offset reported by the deserializer is given a path.
//!
//! Public so that other TOML files of gatewise (the authorization server's
//! `authz.toml`, in `gatewise-authz`) report their errors the same way;
//! [`crate::syntax_errors`], [`crate::deserialize_recovering`] and
//! [`crate::line_column`] are the other building blocks.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index (0-based, as in the file's order).
    Index(usize),
}

/// A path from the document root to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(Vec<Seg>);

impl Path {
    /// The document root (the empty path).
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// This path, then a key.
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Path(segs)
    }

    /// This path, then an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Path(segs)
    }

    /// The steps.
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// The path up to its last key: `routes[0].methods[1]` gives
    /// `routes[0].methods`. That key is what the deserializer skips after an
    /// error (removing an array element would renumber its siblings).
    pub fn up_to_last_key(&self) -> Path {
        let keep = self
            .0
            .iter()
            .rposition(|s| matches!(s, Seg::Key(_)))
            .map_or(0, |i| i + 1);
        Path(self.0.iter().take(keep).cloned().collect())
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &Path) -> bool {
        self.0.starts_with(&other.0)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a key can be written unquoted in TOML.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Spans of one node: its key (absent for array elements) and its value,
/// and what kind of value it is (`"string"`, `"datetime"`, ...).
#[derive(Debug, Clone)]
struct Spans {
    key: Option<Range<usize>>,
    value: Range<usize>,
    kind: &'static str,
}

/// The span of every key and value of a document, by path.
#[derive(Debug, Default)]
pub struct Index {
    nodes: BTreeMap<Path, Spans>,
}

impl Index {
    /// Records every node of the document.
    pub fn new(doc: &Spanned<DeTable<'_>>) -> Self {
        let mut index = Index::default();
        index.table(&Path::root(), doc.get_ref());
        index
    }

    fn table(&mut self, path: &Path, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let path = path.key(key.get_ref());
            self.nodes.insert(
                path.clone(),
                Spans {
                    key: Some(key.span()),
                    value: value.span(),
                    kind: value.get_ref().type_str(),
                },
            );
            self.value(&path, value.get_ref());
        }
    }

    fn value(&mut self, path: &Path, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.table(path, table),
            DeValue::Array(array) => {
                for (i, item) in array.iter().enumerate() {
                    let path = path.index(i);
                    self.nodes.insert(
                        path.clone(),
                        Spans {
                            key: None,
                            value: item.span(),
                            kind: item.get_ref().type_str(),
                        },
                    );
                    self.value(&path, item.get_ref());
                }
            }
            _ => {}
        }
    }

    /// Byte offset of the value at `path`, or of its nearest ancestor that
    /// is in the file (a missing key is reported at its table). For a
    /// `[table]` or `[[array]]` element that is its header.
    pub fn offset(&self, path: &Path) -> Option<usize> {
        let mut segs = path.segs();
        loop {
            if segs.is_empty() {
                return None;
            }
            if let Some(spans) = self.nodes.get(&Path(segs.to_vec())) {
                // Implicit tables (`[a.b]` without `[a]`) may carry an empty
                // span; their key is then the best place.
                return Some(if spans.value.is_empty() {
                    spans.key.as_ref().map_or(spans.value.start, |k| k.start)
                } else {
                    spans.value.start
                });
            }
            segs = segs.split_last().map_or(&[], |(_, rest)| rest);
        }
    }

    /// What kind of value is at `path` (`"string"`, `"datetime"`, ...).
    pub fn kind(&self, path: &Path) -> Option<&'static str> {
        self.nodes.get(path).map(|s| s.kind)
    }

    /// The deepest path whose key or value covers `offset`: where a
    /// deserializer error points.
    pub fn path_at(&self, offset: usize) -> Path {
        let covers = |r: &Range<usize>| r.start <= offset && (offset < r.end || r.start == offset);
        self.nodes
            .iter()
            .filter(|(_, s)| covers(&s.value) || s.key.as_ref().is_some_and(covers))
            .max_by_key(|(p, _)| p.segs().len())
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }
}

/// Removes the key at `path` (which must end with a key) from the document.
/// Returns whether it was there.
pub fn remove(table: &mut DeTable<'_>, path: &Path) -> bool {
    remove_from_table(table, path.segs())
}

fn remove_from_table(table: &mut DeTable<'_>, segs: &[Seg]) -> bool {
    match segs {
        [Seg::Key(key)] => table.remove(key.as_str()).is_some(),
        [Seg::Key(key), rest @ ..] => table
            .get_mut(key.as_str())
            .is_some_and(|v| remove_from_value(v.get_mut(), rest)),
        _ => false,
    }
}

fn remove_from_value(value: &mut DeValue<'_>, segs: &[Seg]) -> bool {
    match (value, segs) {
        (DeValue::Table(table), _) => remove_from_table(table, segs),
        (DeValue::Array(array), [Seg::Index(i), rest @ ..]) => array
            .get_mut(*i)
            .is_some_and(|v| remove_from_value(v.get_mut(), rest)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Spanned<DeTable<'_>> {
        DeTable::parse(text).unwrap()
    }

    #[test]
    fn paths_print_as_toml_paths() {
        let p = Path::root()
            .key("routes")
            .index(2)
            .key("jwt")
            .key("audiences");
        assert_eq!(p.to_string(), "routes[2].jwt.audiences");
        let quoted = Path::root().key("headers").key("X Odd").index(0);
        assert_eq!(quoted.to_string(), "headers.\"X Odd\"[0]");
        assert_eq!(quoted.up_to_last_key().to_string(), "headers.\"X Odd\"");
        assert_eq!(Path::root().to_string(), "");
    }

    #[test]
    fn offsets_fall_back_to_the_nearest_ancestor() {
        let text = "[[routes]]\nname = \"a\"\n[routes.jwt]\naudiences = []\n";
        let index = Index::new(&doc(text));
        let routes0 = Path::root().key("routes").index(0);
        assert_eq!(index.offset(&routes0), Some(0));
        assert_eq!(index.offset(&routes0.key("name")), Some(18));
        let jwt = routes0.key("jwt");
        assert_eq!(index.offset(&jwt), Some(22), "the [routes.jwt] header");
        assert_eq!(index.offset(&jwt.key("audiences")), Some(47));
        assert_eq!(
            index.offset(&jwt.key("issuers")),
            Some(22),
            "missing: its table"
        );
        assert_eq!(index.offset(&Path::root().key("server")), None);
    }

    #[test]
    fn the_deepest_node_at_an_offset_is_found() {
        let text = "[[routes]]\nmethods = [\"GET\", 5]\n";
        let index = Index::new(&doc(text));
        let at_5 = text.find('5').unwrap();
        assert_eq!(index.path_at(at_5).to_string(), "routes[0].methods[1]");
        assert_eq!(
            index.kind(&Path::root().key("routes").index(0).key("methods")),
            Some("array")
        );
    }

    #[test]
    fn keys_are_removed_through_tables_and_arrays() {
        let mut d = doc("[[routes]]\na = 1\nb = { c = 2, d = 3 }\n");
        let b = Path::root().key("routes").index(0).key("b");
        assert!(remove(d.get_mut(), &b.key("c")));
        assert!(!remove(d.get_mut(), &b.key("c")), "already gone");
        assert!(
            !remove(d.get_mut(), &Path::root().key("routes").index(0)),
            "not a key"
        );
        let index = Index::new(&d);
        assert!(index.offset(&b.key("d")).is_some());
        assert_eq!(index.offset(&b.key("c")), index.offset(&b));
    }
}
