//! Media types, content codings and body sniffing: what a body says it is,
//! and what it really is.

use std::io::Read;

/// The most bytes a content decoder may produce (guards against zip bombs).
pub const MAX_DECODED: usize = 64 * 1024 * 1024;

/// A parsed `Content-Type` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// The header value as sent.
    pub raw: String,
    /// `type/subtype`, lower-cased.
    pub essence: String,
    /// Parameters, names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses a `Content-Type` header value leniently.
    pub fn parse(value: &str) -> MediaType {
        let mut parts = value.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let params = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_string(),
                ))
            })
            .collect();
        MediaType {
            raw: value.to_string(),
            essence,
            params,
        }
    }

    /// A parameter's value, e.g. `charset`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `application/json` exactly (any parameters).
    pub fn is_json(&self) -> bool {
        self.essence == "application/json"
    }

    /// A structured-syntax JSON type other than `application/json`
    /// (`application/problem+json`, `application/jwk-set+json`, ...).
    pub fn is_json_suffix(&self) -> bool {
        self.essence.ends_with("+json")
    }

    /// True for `charset` values other than UTF-8 (JSON must be UTF-8, RFC 8259 §8.1).
    pub fn non_utf8_charset(&self) -> Option<&str> {
        self.param("charset")
            .filter(|c| !c.eq_ignore_ascii_case("utf-8") && !c.eq_ignore_ascii_case("utf8"))
    }
}

/// A content coding the doctor can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCoding {
    /// `gzip` / `x-gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib-wrapped (RFC 1950), or raw deflate as some servers send.
    Deflate,
}

impl ContentCoding {
    /// Maps a `Content-Encoding` token.
    pub fn from_name(name: &str) -> Option<ContentCoding> {
        match name {
            "gzip" | "x-gzip" => Some(ContentCoding::Gzip),
            "deflate" => Some(ContentCoding::Deflate),
            _ => None,
        }
    }

    /// The token.
    pub fn name(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Deflate => "deflate",
        }
    }
}

/// Removes one content coding, refusing to produce more than [`MAX_DECODED`] bytes.
pub fn decompress(coding: ContentCoding, data: &[u8]) -> Result<Vec<u8>, String> {
    fn read_capped(mut r: impl Read) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let limit = u64::try_from(MAX_DECODED).unwrap_or(u64::MAX) + 1;
        r.by_ref()
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        if out.len() > MAX_DECODED {
            return Err(format!(
                "decoded body exceeds {} MiB",
                MAX_DECODED / 1024 / 1024
            ));
        }
        Ok(out)
    }
    match coding {
        ContentCoding::Gzip => read_capped(flate2::read::MultiGzDecoder::new(data)),
        ContentCoding::Deflate => read_capped(flate2::read::ZlibDecoder::new(data))
            .or_else(|_| read_capped(flate2::read::DeflateDecoder::new(data))),
    }
}

/// Parses `application/x-www-form-urlencoded` bytes.
pub fn parse_form(data: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(trim_ascii(data))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn trim_ascii(data: &[u8]) -> &[u8] {
    data.trim_ascii()
}

/// The UTF-8 byte order mark.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a body's bytes look like, whatever its `Content-Type` says.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// No bytes (or whitespace only).
    Empty,
    /// A JSON document (after any BOM).
    Json(serde_json::Value),
    /// Looks like JSON (starts with `{` or `[`) but does not parse.
    BrokenJson(JsonError),
    /// An HTML page, with its `<title>` when it has one.
    Html {
        /// Text of the `<title>` element.
        title: Option<String>,
    },
    /// An XML document, with its root element name.
    Xml {
        /// Root element name.
        root: Option<String>,
    },
    /// `application/x-www-form-urlencoded` pairs.
    Form(Vec<(String, String)>),
    /// gzip data (magic `1F 8B`), i.e. a body nobody decoded.
    Gzip,
    /// Other binary data.
    Binary,
    /// Plain text.
    Text(String),
}

impl Shape {
    /// A short noun for messages: "an HTML page", "JSON", ...
    pub fn describe(&self) -> String {
        match self {
            Shape::Empty => "an empty body".to_string(),
            Shape::Json(v) => match v {
                serde_json::Value::Object(_) => "a JSON object".to_string(),
                serde_json::Value::Array(_) => "a JSON array".to_string(),
                serde_json::Value::String(_) => "a JSON string".to_string(),
                serde_json::Value::Number(_) => "a JSON number".to_string(),
                serde_json::Value::Bool(_) => "a JSON boolean".to_string(),
                serde_json::Value::Null => "JSON null".to_string(),
            },
            Shape::BrokenJson(_) => "invalid JSON".to_string(),
            Shape::Html { title: Some(t) } => format!("an HTML page titled \"{t}\""),
            Shape::Html { title: None } => "an HTML page".to_string(),
            Shape::Xml { root: Some(r) } => format!("an XML document (<{r}>)"),
            Shape::Xml { root: None } => "an XML document".to_string(),
            Shape::Form(_) => "form-encoded pairs".to_string(),
            Shape::Gzip => "gzip-compressed bytes".to_string(),
            Shape::Binary => "binary data".to_string(),
            Shape::Text(_) => "plain text".to_string(),
        }
    }
}

/// A JSON syntax error with where it is and a caret under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What serde_json said, without the position suffix.
    pub message: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// True when the document ended early (truncated), not malformed mid-way.
    pub eof: bool,
    /// The offending line (a window of it when long) and a caret line under it.
    pub snippet: String,
}

/// A sniffed body: its shape and whether it started with a BOM.
#[derive(Debug, Clone, PartialEq)]
pub struct Sniffed {
    /// True when the body starts with the UTF-8 BOM.
    pub bom: bool,
    /// True when the body is not valid UTF-8.
    pub invalid_utf8: bool,
    /// The shape of the body after the BOM.
    pub shape: Shape,
}

/// Looks at a body's bytes and says what they are.
pub fn sniff(data: &[u8]) -> Sniffed {
    let bom = data.starts_with(UTF8_BOM);
    let data = if bom {
        data.get(UTF8_BOM.len()..).unwrap_or(&[])
    } else {
        data
    };
    let invalid_utf8 = std::str::from_utf8(data).is_err();
    let trimmed = data.trim_ascii();
    let shape = if trimmed.is_empty() {
        Shape::Empty
    } else if data.starts_with(&[0x1f, 0x8b]) {
        Shape::Gzip
    } else if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(v) => Shape::Json(v),
            Err(e) => Shape::BrokenJson(json_error(data, &e)),
        }
    } else if let Ok(
        v @ (serde_json::Value::String(_)
        | serde_json::Value::Number(_)
        | serde_json::Value::Bool(_)
        | serde_json::Value::Null),
    ) = serde_json::from_slice::<serde_json::Value>(data)
    {
        Shape::Json(v)
    } else if looks_html(trimmed) {
        Shape::Html {
            title: html_title(trimmed),
        }
    } else if trimmed.starts_with(b"<") {
        Shape::Xml {
            root: xml_root(trimmed),
        }
    } else if looks_binary(data) {
        Shape::Binary
    } else if looks_form(trimmed) {
        Shape::Form(parse_form(trimmed))
    } else {
        Shape::Text(String::from_utf8_lossy(trimmed).into_owned())
    };
    Sniffed {
        bom,
        invalid_utf8,
        shape,
    }
}

fn looks_binary(data: &[u8]) -> bool {
    let sample = data.get(..data.len().min(512)).unwrap_or(data);
    let controls = sample
        .iter()
        .filter(|&&b| b < 0x09 || (b > 0x0d && b < 0x20) || b == 0x7f)
        .count();
    controls * 10 > sample.len().max(1) || std::str::from_utf8(data).is_err()
}

fn looks_form(data: &[u8]) -> bool {
    if data.len() > 64 * 1024 || data.iter().any(|b| b.is_ascii_whitespace()) {
        return false;
    }
    let text = String::from_utf8_lossy(data);
    text.split('&').all(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        pair.contains('=')
            && !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.%[]".contains(&b))
    })
}

fn lower_prefix(data: &[u8], n: usize) -> String {
    String::from_utf8_lossy(data.get(..data.len().min(n)).unwrap_or(data)).to_ascii_lowercase()
}

fn looks_html(data: &[u8]) -> bool {
    let head = lower_prefix(data, 2048);
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.contains("<html")
        || head.contains("<head")
        || head.contains("<body")
        || head.contains("<title")
        || (head.starts_with('<')
            && ["<center", "<h1", "<p>", "<div", "<a href", "<br", "<meta"]
                .iter()
                .any(|t| head.contains(t)))
}

/// The text of an HTML page's `<title>`, whitespace collapsed, at most 120 chars.
pub fn html_title(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data.get(..data.len().min(64 * 1024)).unwrap_or(data));
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower.get(open..)?.find('>')? + 1;
    let end = start + lower.get(start..)?.find("</title")?;
    let title: String = text
        .get(start..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let title = title.chars().take(120).collect::<String>();
    if title.is_empty() {
        // Pages such as nginx's error page repeat the status in an <h1>.
        None
    } else {
        Some(title)
    }
}

fn xml_root(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data.get(..data.len().min(4096)).unwrap_or(data));
    let mut rest = text.as_ref();
    loop {
        let i = rest.find('<')?;
        rest = rest.get(i + 1..)?;
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        return (!name.is_empty()).then_some(name);
    }
}

/// Builds a [`JsonError`] with a caret snippet for `data`.
pub fn json_error(data: &[u8], e: &serde_json::Error) -> JsonError {
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full.get(..i).unwrap_or(&full).to_string(),
        None => full.clone(),
    };
    let line = e.line().max(1);
    let column = e.column().max(1);
    let text = String::from_utf8_lossy(data);
    let src_line = text.lines().nth(line - 1).unwrap_or("");
    let chars: Vec<char> = src_line.chars().collect();
    // Show at most 60 characters around the column, with ellipses.
    let col0 = column.saturating_sub(1).min(chars.len());
    let from = col0.saturating_sub(40);
    let to = (col0 + 20).min(chars.len());
    let mut shown: String = chars.get(from..to).unwrap_or(&[]).iter().collect();
    let mut caret_at = col0 - from;
    if from > 0 {
        shown.insert(0, '…');
        caret_at += 1;
    }
    if to < chars.len() {
        shown.push('…');
    }
    let shown: String = shown
        .chars()
        .map(|c| if c.is_control() { '·' } else { c })
        .collect();
    let snippet = format!("{shown}\n{}^", " ".repeat(caret_at));
    JsonError {
        message,
        line,
        column,
        eof: e.classify() == serde_json::error::Category::Eof,
        snippet,
    }
}

/// Renders up to `max` bytes of a body for evidence: text as is (control
/// characters shown as `·`), binary as hex.
pub fn preview(data: &[u8], max: usize) -> String {
    let cut = data.get(..data.len().min(max)).unwrap_or(data);
    let more = if data.len() > max { "…" } else { "" };
    match std::str::from_utf8(cut) {
        Ok(s) if !looks_binary(cut) => {
            let s: String = s
                .chars()
                .map(|c| if c.is_control() && c != '\n' { '·' } else { c })
                .collect();
            format!("{}{more}", s.replace('\n', "⏎"))
        }
        _ => {
            let hex: Vec<String> = cut.iter().take(32).map(|b| format!("{b:02X}")).collect();
            format!(
                "{}{}",
                hex.join(" "),
                if data.len() > 32 { " …" } else { "" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_parses_params() {
        let mt = MediaType::parse("Application/JSON; Charset=\"UTF-8\"");
        assert_eq!(mt.essence, "application/json");
        assert_eq!(mt.param("charset"), Some("UTF-8"));
        assert!(mt.is_json());
        assert!(mt.non_utf8_charset().is_none());
    }

    #[test]
    fn sniffs_shapes() {
        assert!(matches!(sniff(b"").shape, Shape::Empty));
        assert!(matches!(sniff(b"{\"a\":1}").shape, Shape::Json(_)));
        assert!(sniff(b"\xEF\xBB\xBF{}").bom);
        assert!(matches!(sniff(b"\x1f\x8b\x08\x00").shape, Shape::Gzip));
        assert_eq!(
            sniff(b"<html><head><title>502 Bad Gateway</title></head></html>").shape,
            Shape::Html {
                title: Some("502 Bad Gateway".into())
            }
        );
        assert_eq!(
            sniff(b"access_token=abc&token_type=bearer").shape,
            Shape::Form(vec![
                ("access_token".into(), "abc".into()),
                ("token_type".into(), "bearer".into())
            ])
        );
        assert!(
            matches!(sniff(b"<?xml version=\"1.0\"?><Error/>").shape, Shape::Xml { root: Some(r) } if r == "Error")
        );
        assert!(matches!(sniff(b"Bad Request").shape, Shape::Text(_)));
    }

    #[test]
    fn json_error_has_caret() {
        let data = b"{\"access_token\":\"x\",";
        let Shape::BrokenJson(e) = sniff(data).shape else {
            panic!("expected broken json")
        };
        assert!(e.eof);
        assert_eq!(e.line, 1);
        assert!(e.snippet.contains('^'));
    }

    #[test]
    fn decompress_refuses_garbage() {
        assert!(decompress(ContentCoding::Gzip, b"not gzip").is_err());
    }
}
