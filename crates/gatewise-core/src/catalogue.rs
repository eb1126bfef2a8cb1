//! The findings catalogue: every check the core can emit, from which
//! `docs/findings.md` is generated (and checked by a test).

use crate::diagnose::{self, body};
use crate::finding::Check;
use crate::{explain, jose};

/// Every check, grouped by module.
pub fn checks() -> Vec<&'static Check> {
    let groups: [&[&'static Check]; 24] = [
        diagnose::CHECKS,
        body::CHECKS,
        body::token_kind::CHECKS,
        body::error_kind::CHECKS,
        body::introspection_kind::CHECKS,
        body::discovery_kind::CHECKS,
        body::jwks_kind::CHECKS,
        diagnose::token::CHECKS,
        diagnose::error::CHECKS,
        diagnose::request::CHECKS,
        diagnose::assertion::CHECKS,
        diagnose::provider::CHECKS,
        diagnose::introspection::CHECKS,
        diagnose::revocation::CHECKS,
        diagnose::discovery::CHECKS,
        diagnose::jwks::CHECKS,
        diagnose::transport::CHECKS,
        diagnose::live::CHECKS,
        diagnose::authorize::CHECKS,
        diagnose::call::CHECKS,
        diagnose::callback::CHECKS,
        diagnose::device::CHECKS,
        jose::jwt::CHECKS,
        explain::CHECKS,
    ];
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// The catalogue as Markdown, sorted by rule id then code.
pub fn markdown() -> String {
    let mut all = checks();
    all.sort_by(|a, b| (rule_key(a.rule), a.code).cmp(&(rule_key(b.rule), b.code)));
    let mut out = String::from(
        "# Findings catalogue\n\n\
         Generated from the code by `cargo test -p gatewise-core --test catalogue` \
         (run with `UPDATE_EXPECT=1` to rewrite). Do not edit by hand.\n\n\
         Every finding the doctor prints has a rule id (from `oauth-rules.md` section 1, or a \
         gatewise id in the same style: `JW-*` for JWT structure and signatures, `JK-07`..`JK-09` \
         for published-key hygiene, `HT-06`/`HT-07` for capture completeness, `HT-08`/`HT-09` for redirects seen live, `HT-10` for rate limiting (429), `NET-*` for \
         connections that fail (DNS, connect, proxy, timeouts) and `TLS-*` for certificates the live doctor \
         refuses, `MD-08`/`MD-09` for the two discovery forms, `JK-10`/`JK-11` for keys per algorithm and \
         caching, `PV-*` for provider-specific rules, `AR-*` for authorization requests (`doctor authorize-url`), `GR-01` for a grant to avoid, `RT-*` for refresh-token rotation and `LV-*` for repeated or compared live exchanges, `GW-*` for the gateway's recorded refusals (\"diagnose this call\"), `DV-*` for the device authorization grant (RFC 8628), `EX-01` for a client message `doctor explain` does not \
         recognise) and a stable \
         kebab-case code. Severity is fixed per code.\n\n\
         | rule | code | severity | spec | what it detects |\n|---|---|---|---|---|\n",
    );
    for c in all {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            c.rule,
            c.code,
            c.severity,
            c.spec,
            c.summary.replace('|', "\\|")
        ));
    }
    out
}

fn rule_key(rule: &str) -> (String, u32) {
    let (prefix, num) = rule.split_once('-').unwrap_or((rule, "0"));
    (prefix.to_string(), num.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_and_kebab_case() {
        let mut seen = BTreeSet::new();
        for c in checks() {
            assert!(seen.insert(c.code), "duplicate code {}", c.code);
            assert!(
                c.code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "code {} is not kebab-case",
                c.code
            );
            assert!(c.rule.contains('-'), "rule {} is not an id", c.rule);
            assert!(!c.spec.is_empty() && !c.summary.is_empty());
        }
    }
}
