//! `authz.toml`: the example compiles and is documented key by key, every
//! mistake is reported at once with its position, secrets are never taken
//! from the file, and the settings become the server's configuration.

use gatewise_authz::config::{self, ClientSecret, SecretRef, UserPassword};
use gatewise_core::jose::Alg;

const DOCS: &str = include_str!("../../../docs/authz-config.md");

fn errors(text: &str) -> Vec<String> {
    config::compile(text)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn the_example_compiles_without_warnings() {
    let c = config::compile(config::EXAMPLE).unwrap();
    assert_eq!(c.warnings, [], "{:#?}", c.warnings);
    let s = c.settings;
    assert_eq!(s.issuer, "http://127.0.0.1:9100");
    assert_eq!(s.keys.alg, Alg::ES256);
    assert_eq!(s.keys.rotation_interval, Some(30 * 24 * 3600));
    assert_eq!(
        s.keys.encryption_key,
        Some(SecretRef::Env("GATEWISE_AUTHZ_KEY".into()))
    );
    assert_eq!(s.tokens.code, 60);
    assert_eq!(s.clients.len(), 4);
    assert_eq!(
        s.clients[0].secret,
        ClientSecret::Ref(SecretRef::Env("ORDERS_SERVICE_SECRET".into()))
    );
    assert!(s.clients[1].opaque_tokens);
    assert_eq!(s.clients[2].secret, ClientSecret::Public);
    assert_eq!(
        s.clients[2].grant_types,
        [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ]
    );
    assert_eq!((s.tokens.device_code, s.tokens.device_interval), (600, 5));
    assert!(matches!(s.clients[3].secret, ClientSecret::Sha256(_)));
    assert_eq!(s.users[0].claims["groups"][0], "orders-admins");
    assert_eq!(
        s.users[0].password,
        UserPassword::Ref(SecretRef::Env("ALICE_PASSWORD".into()))
    );
}

/// Every key of the example has a row in docs/authz-config.md, and the
/// documented complete example compiles.
#[test]
fn every_key_of_the_example_is_documented() {
    let doc = toml::de::DeTable::parse(config::EXAMPLE).unwrap();
    let mut keys = Vec::new();
    collect_keys(&toml::de::DeValue::Table(doc.into_inner()), &mut keys);
    assert!(keys.len() > 30, "{keys:?}");
    for key in keys {
        // Users' own claims are free-form.
        if ["department", "groups"].contains(&key.as_str()) {
            continue;
        }
        let documented =
            DOCS.contains(&format!("| `{key}` |")) || DOCS.contains(&format!("{key}]"));
        assert!(documented, "`{key}` has no row in docs/authz-config.md");
    }
    let complete = DOCS.split("## A complete example").nth(1).unwrap();
    let block = complete.split("```toml\n").nth(1).unwrap();
    let block = block.split("```").next().unwrap();
    assert_eq!(config::compile(block).unwrap().warnings, []);
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

#[test]
fn every_mistake_is_reported_at_once_with_its_position() {
    let text = r#"issuer = "ftp://x"
storage = "mysql://u:hunter2@h/db"
scopes = ["orders.read"]
colour = "blue"

[tokens]
access = "10"
code = "1h"

[keys]
algorithm = "HS256"

[[clients]]
id = "svc"
secret = "hunter2"
scopes = ["orders.delete"]

[[clients]]
id = "svc"
public = true
secret_env = "X"
grant_types = ["client_credentials", "password"]

[[clients]]
id = "web"
secret_sha256 = "abc"
grant_types = ["authorization_code"]
token_format = "paseto"

[[users]]
username = "alice"
password = "wonderland"
[users.claims]
sub = "root"
"#;
    let e = errors(text);
    let expected = [
        "1:10: issuer: \"ftp://x\" is not an http(s) URL",
        "2:11: storage: expected `sqlite:PATH`",
        "4:1: colour: unknown key `colour`",
        "7:10: tokens.access: invalid duration \"10\"",
        "8:8: tokens.code: at most 10m",
        "11:13: keys.algorithm: \"HS256\" is not supported for signing",
        "15:10: clients[0].secret: secrets are never written in the configuration",
        "16:11: clients[0].scopes[0]: scope \"orders.delete\" is not declared",
        "19:6: clients[1].id: client id \"svc\" is used twice",
        "20:10: clients[1].public: a public client has no secret",
        "22:15: clients[1].grant_types: a public client cannot use client_credentials",
        "22:38: clients[1].grant_types[1]: unknown grant type \"password\"",
        "24:1: clients[2]: authorization_code needs redirect_uris",
        "26:17: clients[2].secret_sha256: expected the SHA-256 of the secret",
        "28:16: clients[2].token_format: unknown value `paseto`",
        "32:12: users[0].password: passwords are never written in the configuration",
        "34:7: users[0].claims.sub: `sub` is set by the server",
    ];
    for want in expected {
        assert!(
            e.iter().any(|got| got.starts_with(want)),
            "missing `{want}` in:\n{}",
            e.join("\n")
        );
    }
    // Secrets never echo back.
    assert!(!e.join("\n").contains("hunter2"), "{e:#?}");
    assert!(!e.join("\n").contains("wonderland"), "{e:#?}");
    // In file order.
    let lines: Vec<usize> = e
        .iter()
        .map(|s| s.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{e:#?}");
}

#[test]
fn syntax_errors_are_reported_with_their_line() {
    let e = errors("issuer = \"http://x\"\n[[clients]\nid = 1\n");
    assert!(e[0].starts_with("2:"), "{e:?}");
    assert!(e[0].contains("TOML syntax"), "{e:?}");
}

#[test]
fn warnings_point_at_what_is_odd() {
    let text = r#"issuer = "http://auth.example.test"
[tokens]
access = "1h"
refresh = "10m"
[[clients]]
id = "svc"
secret_env = "SVC_SECRET"
redirect_uris = ["https://app.example.test/cb"]
grant_types = ["client_credentials"]
"#;
    let c = config::compile(text).unwrap();
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w[0].starts_with("1:10: issuer: plain http beyond loopback"),
        "{w:?}"
    );
    assert!(w[1].starts_with("4:11: tokens.refresh:"), "{w:?}");
    assert!(w[2].starts_with("8:17: clients[0].redirect_uris:"), "{w:?}");
}

#[test]
fn settings_become_the_server_configuration_with_secrets_resolved() {
    let c = config::compile(config::EXAMPLE).unwrap().settings;
    let mut asked = Vec::new();
    let config = c
        .authz_config(&mut |r| {
            asked.push(r.clone());
            Ok(format!("value-of-{r:?}"))
        })
        .unwrap();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert_eq!(config.alg, Alg::ES256);
    assert_eq!(config.code_ttl, 60);
    assert_eq!(config.key_rotation, Some(30 * 24 * 3600));
    assert!(config.clients[0].secret.starts_with("value-of-Env"));
    assert!(config.clients[2].public);
    assert!(config.clients[3].secret_sha256.is_some());
    assert!(config.clients[3].secret.is_empty());
    // What cannot be read is reported with its path, every one of them.
    let e = c
        .authz_config(&mut |r| match r {
            SecretRef::Env(n) => Err(format!("environment variable {n} is not set")),
            SecretRef::File(_) => Ok("x".into()),
        })
        .unwrap_err();
    let e: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(
        e,
        [
            "clients[0].secret_env: environment variable ORDERS_SERVICE_SECRET is not set",
            "clients[1].secret_env: environment variable WEB_APP_SECRET is not set",
            "users[0].password_env: environment variable ALICE_PASSWORD is not set",
        ]
    );
}

/// A private_key_jwt client (RFC 7523): its JWK Set inline (a table or JSON
/// text) or from a file read at start like a secret file; never with a
/// secret as well; an inline set without a usable key is an error.
#[test]
fn private_key_jwt_clients_and_device_settings() {
    const EC: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"p1","use":"sig","alg":"ES256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
    let text = format!(
        r#"issuer = "http://127.0.0.1:9100"

[tokens]
device_code = "5m"
device_interval = "2s"

[[clients]]
id = "inline-json"
jwks = '{EC}'

[[clients]]
id = "inline-table"
[clients.jwks]
keys = [{{ kty = "EC", crv = "P-256", x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM" }}]

[[clients]]
id = "from-file"
jwks_file = "partner.jwks.json"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
"#
    );
    let s = config::compile(&text).unwrap().settings;
    assert_eq!((s.tokens.device_code, s.tokens.device_interval), (300, 2));
    assert!(matches!(
        &s.clients[0].secret,
        ClientSecret::Jwks(config::JwksSource::Inline(doc)) if doc == EC
    ));
    assert!(matches!(
        s.clients[1].secret,
        ClientSecret::Jwks(config::JwksSource::Inline(_))
    ));
    let mut read = |r: &SecretRef| match r {
        SecretRef::File(p) if p.ends_with("partner.jwks.json") => Ok(EC.to_owned()),
        other => Err(format!("unexpected {other:?}")),
    };
    let ac = s.authz_config(&mut read).unwrap();
    assert_eq!(ac.clients[2].jwks.as_deref(), Some(EC));
    assert_eq!((ac.device_code_ttl, ac.device_interval), (300, 2));
    // The server takes them (the keys parse).
    let fixed = std::sync::Arc::new(gatewise_core::clock::FixedClock(1));
    gatewise_authz::Authz::new(ac, fixed).unwrap();

    let e = errors(
        r#"[tokens]
device_interval = "2m"

[[clients]]
id = "both"
secret_env = "X"
jwks_file = "k.json"

[[clients]]
id = "hmac"
jwks = '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}'

[[clients]]
id = "broken"
jwks = 'not json'
"#,
    );
    let joined = e.join("\n");
    assert!(
        joined.contains("tokens.device_interval: between 1s and 60s"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "clients[0]: give one of secret_env, secret_file, secret_sha256, jwks or jwks_file"
        ),
        "{joined}"
    );
    assert!(
        joined.contains("clients[1].jwks: no public RS256, ES256 or EdDSA signing key"),
        "{joined}"
    );
    assert!(
        joined.contains("clients[2].jwks: the JWKS is not JSON"),
        "{joined}"
    );
}
