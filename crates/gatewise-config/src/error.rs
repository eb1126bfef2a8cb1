//! What `compile` reports: errors (the file is refused) and warnings (it is
//! accepted), each with the TOML path of the value and where it is in the file.

use std::fmt;

/// A mistake that makes the file unusable.
///
/// `Display` gives `12:5: routes[2].jwt.audiences: must not be empty`; use
/// [`ConfigError::display_with`] to put the file name in front, as compilers
/// do (`gatewise.toml:12:5: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Located { file: None, path: &self.path, line: self.line, column: self.column, message: &self.message })]
pub struct ConfigError {
    /// TOML path of the value, such as `routes[2].jwt.audiences`; empty for
    /// errors about the file as a whole (TOML syntax).
    pub path: String,
    /// 1-based line of the value (or of its table when the key is missing).
    pub line: Option<usize>,
    /// 1-based column, in characters, on that line.
    pub column: Option<usize>,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

/// Something legal but probably not meant (an unused upstream, a very long
/// leeway). The file is accepted.
///
/// Displays like [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Located { file: None, path: &self.path, line: self.line, column: self.column, message: &self.message })]
pub struct ConfigWarning {
    /// TOML path of the value, such as `upstreams[1]`.
    pub path: String,
    /// 1-based line of the value (or of its table).
    pub line: Option<usize>,
    /// 1-based column, in characters, on that line.
    pub column: Option<usize>,
    /// What is odd, lowercase, without a trailing period.
    pub message: String,
}

impl ConfigError {
    /// Displays as `file:line:column: path: message` (parts that are unknown
    /// are left out).
    pub fn display_with<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        Located {
            file: Some(file),
            path: &self.path,
            line: self.line,
            column: self.column,
            message: &self.message,
        }
    }
}

impl ConfigWarning {
    /// Displays as `file:line:column: path: message` (parts that are unknown
    /// are left out).
    pub fn display_with<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        Located {
            file: Some(file),
            path: &self.path,
            line: self.line,
            column: self.column,
            message: &self.message,
        }
    }
}

/// The shared rendering of errors and warnings.
struct Located<'a> {
    file: Option<&'a str>,
    path: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut position = String::new();
        if let Some(file) = self.file {
            position.push_str(file);
        }
        if let Some(line) = self.line {
            if !position.is_empty() {
                position.push(':');
            }
            position.push_str(&line.to_string());
            if let Some(column) = self.column {
                position.push(':');
                position.push_str(&column.to_string());
            }
        }
        if !position.is_empty() {
            write!(f, "{position}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(self.message)
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // `=` after the two-byte `é`: byte 10, character 4 of line 2.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let e = ConfigError {
            path: "routes[2].jwt.audiences".into(),
            line: Some(12),
            column: Some(5),
            message: "must not be empty".into(),
        };
        assert_eq!(
            e.to_string(),
            "12:5: routes[2].jwt.audiences: must not be empty"
        );
        assert_eq!(
            e.display_with("gatewise.toml").to_string(),
            "gatewise.toml:12:5: routes[2].jwt.audiences: must not be empty"
        );
        let syntax = ConfigError {
            path: String::new(),
            line: Some(3),
            column: None,
            message: "unclosed array".into(),
        };
        assert_eq!(
            syntax.display_with("g.toml").to_string(),
            "g.toml:3: unclosed array"
        );
        let nowhere = ConfigWarning {
            path: "upstreams[0]".into(),
            line: None,
            column: None,
            message: "never used".into(),
        };
        assert_eq!(
            nowhere.display_with("g.toml").to_string(),
            "g.toml: upstreams[0]: never used"
        );
        assert_eq!(nowhere.to_string(), "upstreams[0]: never used");
    }
}
