//! Route matching: host, exact path or path prefix, and method. The most
//! specific route wins, whatever the file order; a miss is a 404.

use gatewise_config::model::{PathMatch, Route};

/// Routes compiled for matching.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Sorted most specific first.
    entries: Vec<(Specificity, usize)>,
}

/// Ordering key: host, then exact path, then prefix length, then methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    host: bool,
    exact: bool,
    prefix_len: usize,
    methods: bool,
}

impl RouteTable {
    /// Compiles `routes` (indices into this slice are what [`RouteTable::find`] returns).
    pub fn new(routes: &[Route]) -> RouteTable {
        let mut entries: Vec<(Specificity, usize)> = routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (exact, prefix_len) = match &r.matcher.path {
                    PathMatch::Exact(p) => (true, p.len()),
                    PathMatch::Prefix(p) => (false, p.len()),
                };
                let s = Specificity {
                    host: r.matcher.host.is_some(),
                    exact,
                    prefix_len,
                    methods: !r.matcher.methods.is_empty(),
                };
                (s, i)
            })
            .collect();
        // Most specific first; file order breaks ties.
        entries.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        RouteTable { entries }
    }

    /// The index of the most specific route matching the request.
    /// `host` is the request's host without port.
    pub fn find(
        &self,
        routes: &[Route],
        host: Option<&str>,
        path: &str,
        method: &str,
    ) -> Option<usize> {
        self.entries.iter().map(|(_, i)| *i).find(|&i| {
            let Some(r) = routes.get(i) else { return false };
            let m = &r.matcher;
            if let Some(want) = &m.host
                && !host.is_some_and(|h| h.eq_ignore_ascii_case(want))
            {
                return false;
            }
            if !m.methods.is_empty() && !m.methods.iter().any(|x| x == method) {
                return false;
            }
            match &m.path {
                PathMatch::Exact(p) => path == p,
                PathMatch::Prefix(p) => prefix_matches(p, path),
            }
        })
    }
}

/// `/api` matches `/api`, `/api/` and `/api/x`, not `/apix`; `/` matches all.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return true;
    }
    match path.strip_prefix(p) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The path forwarded when a route strips its prefix: never empty.
pub fn strip(prefix: &str, path: &str) -> String {
    let p = prefix.trim_end_matches('/');
    let rest = path.strip_prefix(p).unwrap_or(path);
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/v1"));
        assert!(prefix_matches("/api/", "/api/v1"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(prefix_matches("/", "/anything"));
        assert_eq!(strip("/api", "/api/v1?x"), "/v1?x");
        assert_eq!(strip("/api", "/api"), "/");
    }
}
