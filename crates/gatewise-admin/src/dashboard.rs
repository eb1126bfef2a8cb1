//! The web dashboard, served by the admin listener at `/`.
//!
//! Choice: static HTML, CSS and one small vanilla JavaScript file, embedded
//! in the binary with `include_str!` and served as they are. No build step,
//! no framework and no CDN (the admin listener often runs on hosts without
//! internet access); the script draws its charts as inline SVG. The page
//! holds no data, so it is served without the admin token; everything it
//! shows comes from the JSON API, which still requires the token: the
//! script asks for it on a 401, keeps it in `sessionStorage` and sends it as
//! `Authorization: Bearer`.
//!
//! Paths, headers and reason codes in the call log are attacker-controlled
//! strings: the script builds the page with `textContent` and
//! `setAttribute` only (a test here refuses the HTML-parsing DOM calls), and
//! every dashboard response carries a `Content-Security-Policy` that allows
//! nothing but this origin (no inline script, no other host).
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /dashboard.js` | its script |
//! | `GET /dashboard.css` | its style sheet |
//! | `GET /favicon.svg` | its icon |

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The page.
const INDEX_HTML: &str = include_str!("../assets/dashboard.html");
/// The script: views, API calls, SVG charts.
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
/// The style sheet.
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");
/// The icon.
const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

/// The `Content-Security-Policy` of every dashboard response: this origin
/// only, no inline script, not framed by other sites.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes (no token required), to merge into the admin router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard.js",
            get(|| async { asset(DASHBOARD_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard.css",
            get(|| async { asset(DASHBOARD_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/favicon.svg",
            get(|| async { asset(FAVICON_SVG, "image/svg+xml") }),
        )
}

/// An embedded file with its type and the security headers.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 5] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // Small files on a local listener: always revalidate, so an upgraded
        // binary never runs with an old script.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of `attr="..."` in `html`.
    fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let needle = format!(" {attr}=\"");
        html.match_indices(&needle)
            .filter_map(|(at, m)| {
                let rest = html.get(at + m.len()..)?;
                rest.split_once('"').map(|(v, _)| v)
            })
            .collect()
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        let mut refs = attribute_values(INDEX_HTML, "src");
        refs.extend(attribute_values(INDEX_HTML, "href"));
        assert!(refs.contains(&"dashboard.js"), "{refs:?}");
        assert!(refs.contains(&"dashboard.css"), "{refs:?}");
        for r in refs {
            // Relative links (so a path prefix of a reverse proxy keeps
            // working), to files this module serves, or in-page views.
            assert!(
                r.starts_with('#') || ["dashboard.js", "dashboard.css", "favicon.svg"].contains(&r),
                "the page refers to {r:?}, which the dashboard does not serve"
            );
        }
        assert!(
            !INDEX_HTML.contains("<script>") && !INDEX_HTML.contains(" style="),
            "inline script or style would be blocked by the CSP"
        );
    }

    #[test]
    fn the_script_never_parses_strings_as_html() {
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('style'",
            "http://",
            "https://",
        ] {
            // The SVG namespace is the one URL the script may name.
            let script = DASHBOARD_JS.replace("'http://www.w3.org/2000/svg'", "");
            assert!(
                !script.contains(banned),
                "dashboard.js uses {banned}: build the DOM with textContent and setAttribute"
            );
        }
    }

    #[test]
    fn the_policy_allows_this_origin_only() {
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }
}
