//! Failed client authentication, limited per client (issue 4: "failed
//! client authentication rate-limited per client"): after
//! [`MAX_FAILURES`] failures within [`WINDOW`] seconds, a client id is
//! refused without checking its credentials until the window ends (429 with
//! `Retry-After`, RFC 6585 §4), so a secret cannot be guessed at the
//! server's full speed. Only registered client ids are counted, so made-up
//! ids cannot grow the table. Time is the server's `Clock` (tests move it).

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures allowed per client within a window.
pub const MAX_FAILURES: u32 = 10;
/// The window, seconds.
pub const WINDOW: u64 = 60;

/// Failure counts per client id: (window start, failures in it).
#[derive(Debug, Default)]
pub(crate) struct AuthThrottle {
    failures: Mutex<HashMap<String, (u64, u32)>>,
}

impl AuthThrottle {
    /// Seconds until `client` may try again, when it is blocked now.
    pub(crate) fn blocked(&self, client: &str, now: u64) -> Option<u64> {
        let map = self.failures.lock().ok()?;
        let (start, n) = *map.get(client)?;
        let end = start + WINDOW;
        (n >= MAX_FAILURES && now < end).then(|| end - now)
    }

    /// Counts a failed authentication of a registered `client`.
    pub(crate) fn failed(&self, client: &str, now: u64) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        let entry = map.entry(client.to_owned()).or_insert((now, 0));
        if now >= entry.0 + WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// The client id a request claims: `client_id` in the form (post, public
/// clients, assertions usually), else the id of `Authorization: Basic`
/// (decoded per RFC 6749 §2.3.1, and raw).
pub(crate) fn claimed_client(auth: Option<&str>, form: &[(String, String)]) -> Option<String> {
    if let Some((_, id)) = form.iter().find(|(k, _)| k == "client_id") {
        return Some(id.clone());
    }
    use base64::Engine as _;
    let (scheme, cred) = auth?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cred.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, _) = text.split_once(':')?;
    Some(
        url::form_urlencoded::parse(format!("x={id}").as_bytes())
            .next()
            .map_or_else(|| id.to_owned(), |(_, v)| v.into_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_block_a_client_for_the_rest_of_the_window() {
        let t = AuthThrottle::default();
        for i in 0..MAX_FAILURES {
            assert_eq!(t.blocked("c", 1000 + u64::from(i)), None);
            t.failed("c", 1000 + u64::from(i));
        }
        assert_eq!(t.blocked("c", 1010), Some(50));
        assert_eq!(t.blocked("other", 1010), None);
        assert_eq!(t.blocked("c", 1060), None);
        // A new window starts from zero.
        t.failed("c", 1061);
        assert_eq!(t.blocked("c", 1062), None);
    }

    #[test]
    fn the_claimed_id_comes_from_the_form_or_basic() {
        let form = vec![("client_id".to_owned(), "post-client".to_owned())];
        assert_eq!(claimed_client(None, &form).as_deref(), Some("post-client"));
        // base64("my%2Dclient:s")
        assert_eq!(
            claimed_client(Some("Basic bXklMkRjbGllbnQ6cw=="), &[]).as_deref(),
            Some("my-client")
        );
        assert_eq!(claimed_client(Some("Bearer x"), &[]), None);
    }
}
