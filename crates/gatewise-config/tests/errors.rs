//! Every mistake of a file is reported at once, with its path, line and column.

mod support;

use gatewise_config::compile;
use support::{BASE, errors, warnings};

/// Seven mistakes in four sections, of three kinds (meaning, types and
/// spelling, references): all of them come out, in file order.
#[test]
fn every_mistake_is_reported_with_its_path_and_line() {
    let text = r#"
[server]
listen = "localhost:8080"
max_header_bytes = "512B"

[[issuers]]
name = "main"
issuer = "https://as.example.com"
algorithms = ["RS256", "none"]

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000"]
first_byte_timeout = "30s"
total_timeout = "10s"

[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "api"
[routes.jwt]
issuers = ["main"]
audiences = []

[[routes]]
name = "orders-v2"
path_prefix = "/orders"
upstream = "apii"
retries = 3
"#;
    assert_eq!(
        errors(text),
        [
            "gatewise.toml:3:10: server.listen: invalid address \"localhost:8080\": expected an IP \
             address and port such as \"127.0.0.1:8080\" or \"[::]:8443\" (host names are not resolved)",
            "gatewise.toml:4:20: server.max_header_bytes: must be between 1KiB and 1MiB (1024 to \
             1048576 bytes), not 512",
            "gatewise.toml:6:1: issuers[0]: needs one of `discovery`, `jwks_uri` or `jwks_file`",
            "gatewise.toml:9:24: issuers[0].algorithms[1]: `none` (unsigned tokens) is never accepted",
            "gatewise.toml:15:17: upstreams[0].total_timeout: must be at least first_byte_timeout (30s)",
            "gatewise.toml:23:13: routes[0].jwt.audiences: must not be empty",
            "gatewise.toml:25:1: routes[1]: route \"orders-v2\" has the same matcher as routes[0] \
             (\"orders\"): requests would match both",
            "gatewise.toml:28:12: routes[1].upstream: unknown upstream \"apii\" (defined: \"api\")",
            "gatewise.toml:29:1: routes[1].retries: unknown key `retries`, expected one of `name`, \
             `host`, `path`, `path_prefix`, `methods`, `upstream`, `strip_prefix`, `inspect`, \
             `repair`, `jwt`, `introspection`, `rate_limit`, `headers`",
        ]
    );
}

#[test]
fn errors_carry_structured_positions() {
    let errs = compile("[server]\nshutdown_grace = \"0s\"\n").unwrap_err();
    let [e] = errs.as_slice() else {
        panic!("one error: {errs:?}")
    };
    assert_eq!(e.path, "server.shutdown_grace");
    assert_eq!((e.line, e.column), (Some(2), Some(18)));
    assert_eq!(e.message, "must be greater than zero");
    assert_eq!(
        e.to_string(),
        "2:18: server.shutdown_grace: must be greater than zero"
    );
}

#[test]
fn syntax_errors_have_line_and_column() {
    let errs =
        compile("[server]\nlisten = \"127.0.0.1:8080\"\nshutdown_grace = 30s\n").unwrap_err();
    let [e] = errs.as_slice() else {
        panic!("one error: {errs:?}")
    };
    assert_eq!(e.path, "");
    assert_eq!((e.line, e.column), (Some(3), Some(18)));
    assert!(e.message.starts_with("TOML syntax: "), "{}", e.message);
    assert!(
        e.display_with("gatewise.toml")
            .to_string()
            .starts_with("gatewise.toml:3:18: TOML syntax: ")
    );
}

#[test]
fn independent_syntax_errors_on_different_lines_are_all_reported() {
    let errs = compile("a = \"x\nb = 1\n[c\nd = 2\n").unwrap_err();
    let lines: Vec<_> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(1), Some(3)], "{errs:#?}");
}

/// The deserializer stops at the first wrong type; compile skips that key
/// and runs it again, so all of them are reported.
#[test]
fn every_type_error_of_one_table_is_reported() {
    let text = r#"
[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000", 9001]
retries = "two"
balance = "random"
connect_timeout = 2
eject_for = "30 s"
colour = "blue"
"#;
    assert_eq!(
        errors(text),
        [
            "gatewise.toml:4:37: upstreams[0].targets[1]: invalid type: integer `9001`, expected a string",
            "gatewise.toml:5:11: upstreams[0].retries: invalid type: string \"two\", expected a whole \
             number from 0 to 4294967295",
            "gatewise.toml:6:11: upstreams[0].balance: unknown value `random`, expected \
             `round_robin` or `least_requests`",
            "gatewise.toml:7:19: upstreams[0].connect_timeout: invalid type: integer `2`, expected a \
             duration such as \"250ms\", \"10s\", \"5m\", \"1h\" or \"1d\"",
            "gatewise.toml:8:13: upstreams[0].eject_for: invalid duration \"30 s\": unexpected \" \" \
             (write a whole number directly followed by its unit, like \"10s\")",
            "gatewise.toml:9:1: upstreams[0].colour: unknown key `colour`, expected one of `name`, \
             `targets`, `balance`, `connect_timeout`, `first_byte_timeout`, `total_timeout`, \
             `retries`, `eject_after`, `eject_for`, `host_header`, `ca_file`, `health_check`",
        ]
    );
}

#[test]
fn a_rejected_key_is_not_reported_again_as_missing() {
    let text = BASE.replace("upstream = \"api\"", "upstream = 7");
    assert_eq!(
        errors(&text),
        ["gatewise.toml:13:12: routes[0].upstream: invalid type: integer `7`, expected a string"]
    );
}

#[test]
fn sections_of_the_wrong_shape() {
    assert_eq!(
        errors("routes = 5\nissuers = [1]\n[upstreams]\n"),
        [
            "gatewise.toml:1:10: routes: invalid type: integer `5`, expected an array",
            "gatewise.toml:2:12: issuers[0]: invalid type: integer `1`, expected a table",
            "gatewise.toml:3:1: upstreams: invalid type: table, expected an array",
        ]
    );
    assert_eq!(
        errors("[limits]\nx = 1\n"),
        [
            "gatewise.toml:1:2: limits: unknown key `limits`, expected one of `server`, `issuers`, \
             `introspectors`, `upstreams`, `routes`, `call_log`, `admin`, `telemetry`"
        ]
    );
}

#[test]
fn the_admin_api_beyond_loopback_needs_a_token_never_written_in_the_file() {
    let open = format!("{BASE}\n[admin]\nlisten = \"0.0.0.0:9901\"\n");
    let line = 1 + open
        .lines()
        .position(|l| l.starts_with("listen = \"0.0.0.0"))
        .unwrap();
    assert_eq!(
        errors(&open),
        [format!(
            "gatewise.toml:{line}:10: admin.listen: the admin API shows every call and the running \
             configuration: listening on 0.0.0.0:9901 (beyond loopback) needs `token_env` or `token_file`"
        )]
    );
    let with_env = format!("{open}token_env = \"ADMIN_TOKEN\"\n");
    assert!(support::ok(&with_env).warnings.is_empty());
    let literal = format!("{open}token = \"hunter2\"\n");
    let errs = errors(&literal);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("admin.token: secrets are not written in the configuration file"));
    assert!(!errs[0].contains("hunter2"));
    let both = format!("{open}token_env = \"A\"\ntoken_file = \"t\"\n");
    assert!(errors(&both)[0].contains("`token_env` and `token_file` are exclusive"));
    let same = format!("{BASE}\n[server]\nlisten = \"127.0.0.1:9901\"\n");
    assert!(
        errors(&same)
            .iter()
            .any(|e| e.contains("admin.listen: 127.0.0.1:9901 is also `server.listen`")),
        "{:?}",
        errors(&same)
    );
}

#[test]
fn a_postgres_call_log_url_never_carries_its_password_in_the_file() {
    let with = |line: &str| format!("{BASE}\n[call_log]\n{line}\n");
    let errs = errors(&with(
        "postgres_url = \"postgres://gw:hunter2@db:5432/calls\"",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("call_log.postgres_url: the URL carries a password"),
        "{errs:?}"
    );
    assert!(!errs[0].contains("hunter2"), "{errs:?}");
    let errs = errors(&with("postgres_url = \"mysql://db/calls\""));
    assert!(
        errs[0].contains("must be a postgres:// or postgresql:// URL"),
        "{errs:?}"
    );
    let errs = errors(&with(
        "postgres_url = \"postgres://db/x\"\npostgres_url_env = \"PG\"",
    ));
    assert!(errs[0].contains("are exclusive"), "{errs:?}");
    for ok in [
        "postgres_url = \"postgres://gatewise@127.0.0.1:5432/calls\"",
        "postgres_url_env = \"GATEWISE_CALLS_PG\"",
        "postgres_url_file = \"secrets/pg.url\"",
    ] {
        let c = support::ok(&with(ok));
        assert!(c.config.static_config.call_log.postgres.is_some(), "{ok}");
    }
}

/// The 1-based number of the first line of `text` that starts with `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    1 + text.lines().position(|l| l.starts_with(needle)).unwrap()
}

#[test]
fn call_log_mistakes_are_all_named() {
    let text = format!(
        "{BASE}\n[call_log]\npath = \"\"\nmax_age = \"0s\"\nmax_size = \"1KiB\"\nqueue = 0\nkeep_query = \"yes\"\n"
    );
    let line = |needle: &str| line_of(&text, needle);
    assert_eq!(
        errors(&text),
        [
            format!(
                "gatewise.toml:{}:8: call_log.path: must not be empty",
                line("path = \"\"")
            ),
            format!(
                "gatewise.toml:{}:11: call_log.max_age: must be greater than zero",
                line("max_age")
            ),
            format!(
                "gatewise.toml:{}:12: call_log.max_size: must be at least 1MiB (1048576 bytes), not 1024",
                line("max_size")
            ),
            format!(
                "gatewise.toml:{}:9: call_log.queue: must be between 1 and 4194304, not 0",
                line("queue")
            ),
            format!(
                "gatewise.toml:{}:14: call_log.keep_query: invalid type: string \"yes\", expected true or false",
                line("keep_query")
            ),
        ]
    );
}

#[test]
fn call_log_writer_settings_out_of_range_are_named() {
    let text = format!(
        "{BASE}\n[call_log]\nqueue_max_size = \"512KiB\"\nbatch_size = 0\nbatch_wait = \"1ms\"\nindex_min_idle = 1.5\n"
    );
    let line = |needle: &str| line_of(&text, needle);
    assert_eq!(
        errors(&text),
        [
            format!(
                "gatewise.toml:{}:18: call_log.queue_max_size: must be at least 1MiB (1048576 bytes), not 524288",
                line("queue_max_size")
            ),
            format!(
                "gatewise.toml:{}:14: call_log.batch_size: must be between 1 and 100000, not 0",
                line("batch_size")
            ),
            format!(
                "gatewise.toml:{}:14: call_log.batch_wait: must be between 5ms and 10s, not 1ms",
                line("batch_wait")
            ),
            format!(
                "gatewise.toml:{}:18: call_log.index_min_idle: must be more than 0 and at most 1 \
                 (the fraction of time the CPUs are idle, e.g. 0.25), not 1.5",
                line("index_min_idle")
            ),
        ]
    );
    let with = |lines: &str| format!("{BASE}\n[call_log]\n{lines}\n");
    for (setting, error) in [
        (
            "index_min_idle = 0",
            "call_log.index_min_idle: must be more than 0 and at most 1",
        ),
        (
            "index_min_idle = -0.25",
            "call_log.index_min_idle: must be more than 0 and at most 1",
        ),
        (
            "index_min_idle = nan",
            "call_log.index_min_idle: must be more than 0 and at most 1",
        ),
        (
            "batch_size = 100001",
            "call_log.batch_size: must be between 1 and 100000, not 100001",
        ),
        (
            "batch_wait = \"11s\"",
            "call_log.batch_wait: must be between 5ms and 10s, not 11s",
        ),
        (
            "batch_wait = 100",
            "call_log.batch_wait: invalid type: integer `100`, expected a duration",
        ),
        (
            "index_when_idle = \"no\"",
            "call_log.index_when_idle: invalid type: string \"no\", expected true or false",
        ),
    ] {
        let errs = errors(&with(setting));
        assert_eq!(errs.len(), 1, "{setting}: {errs:?}");
        assert!(errs[0].contains(error), "{setting}: {errs:?}");
    }
    // A fraction nothing reads: said so.
    let w = warnings(&with("index_when_idle = false\nindex_min_idle = 0.5"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("call_log.index_min_idle: has no effect with `index_when_idle = false`"),
        "{w:?}"
    );
}

#[test]
fn route_matcher_duplicates_name_both_routes() {
    let text = format!(
        r#"{BASE}
[[routes]]
name = "same"
path_prefix = "/api"
upstream = "api"

[[routes]]
name = "get-only"
path = "/items"
methods = ["get", "POST"]
upstream = "api"

[[routes]]
name = "get-again"
path = "/items"
methods = ["GET", "DELETE"]
upstream = "api"

# Not conflicts: another host, another path kind, a method list against any method.
[[routes]]
host = "Admin.Example.com"
path_prefix = "/api"
upstream = "api"
[[routes]]
path = "/api"
upstream = "api"
[[routes]]
path_prefix = "/api"
methods = ["GET"]
upstream = "api"
"#
    );
    assert_eq!(
        errors(&text),
        [
            "gatewise.toml:18:1: routes[1]: route \"same\" has the same matcher as routes[0] \
             (\"routes[0]\"): requests would match both",
            "gatewise.toml:29:1: routes[3]: route \"get-again\" overlaps on GET with routes[2] \
             (\"get-only\"): requests would match both",
        ]
    );
}

#[test]
fn names_are_required_unique_and_resolved() {
    let text = format!(
        r#"{BASE}
[[issuers]]
name = "main"
issuer = "https://other.example.com"
discovery = "https://other.example.com/.well-known/openid-configuration"

[[upstreams]]
targets = ["http://127.0.0.1:9001"]

[[routes]]
name = ""
path = "/x"
upstream = "api"
[routes.jwt]
issuers = ["main", "other"]
audiences = ["a"]
"#
    );
    assert_eq!(
        errors(&text),
        [
            "gatewise.toml:19:8: issuers[1].name: issuer name \"main\" is already used by issuers[0]",
            "gatewise.toml:23:1: upstreams[1].name: missing required key",
            "gatewise.toml:27:8: routes[1].name: must not be empty",
            "gatewise.toml:31:20: routes[1].jwt.issuers[1]: unknown issuer \"other\" (defined: \"main\")",
        ]
    );
}

#[test]
fn issuer_rules() {
    let text = r#"
[[issuers]]
name = "a"
issuer = ""
discovery = "ftp://as.example.com/meta"
algorithms = ["HS256", "rs256", "XX"]
leeway = "0s"
jwks_refetch_interval = "0s"

[[issuers]]
name = "b"
issuer = "b"
jwks_uri = "https://b.example.com/jwks"
jwks_file = "b.json"
algorithms = []
"#;
    assert_eq!(
        errors(text),
        [
            "gatewise.toml:4:10: issuers[0].issuer: must not be empty",
            "gatewise.toml:5:13: issuers[0].discovery: must be an http or https URL, not \"ftp\"",
            "gatewise.toml:6:15: issuers[0].algorithms[0]: HS256 needs a shared secret, and issuers \
             have no secret key source yet: use an asymmetric algorithm (RS256, PS256, ES256, EdDSA, ...)",
            "gatewise.toml:6:24: issuers[0].algorithms[1]: unknown algorithm \"rs256\": names are \
             case-sensitive, did you mean RS256?",
            "gatewise.toml:6:33: issuers[0].algorithms[2]: unknown algorithm \"XX\": expected one of \
             RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
            "gatewise.toml:8:25: issuers[0].jwks_refetch_interval: must be greater than zero",
            "gatewise.toml:14:13: issuers[1].jwks_file: `jwks_uri` and `jwks_file` are exclusive: keep one",
            "gatewise.toml:15:14: issuers[1].algorithms: must not be empty",
        ]
    );
}

#[test]
fn upstream_rules() {
    let text = r#"
[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000/v1", "127.0.0.1:9000", "https://user:pw@h:443"]
connect_timeout = "90s"
eject_after = 0
host_header = "a b"
health_check = { path = "health" }

[[upstreams]]
name = "empty"
"#;
    assert_eq!(
        errors(text),
        [
            "gatewise.toml:4:12: upstreams[0].targets[0]: invalid target \"http://127.0.0.1:9000/v1\": \
             expected http://host:port or https://host:port, without a path, query or fragment",
            "gatewise.toml:4:40: upstreams[0].targets[1]: invalid target \"127.0.0.1:9000\": no scheme; \
             expected http://host:port or https://host:port",
            "gatewise.toml:4:58: upstreams[0].targets[2]: invalid target \"https://user:pw@h:443\": \
             must not carry credentials",
            "gatewise.toml:5:19: upstreams[0].connect_timeout: must not exceed total_timeout (1m by default)",
            "gatewise.toml:6:15: upstreams[0].eject_after: must be at least 1",
            "gatewise.toml:7:15: upstreams[0].host_header: invalid host \"a b\": expected \"preserve\", \
             \"target\" or a host (optionally with a port)",
            "gatewise.toml:8:25: upstreams[0].health_check.path: must start with \"/\"",
            "gatewise.toml:10:1: upstreams[1].targets: missing required key",
        ]
    );
}

#[test]
fn route_rules() {
    let text = format!(
        r#"{BASE}
[[routes]]
host = "api.example.com:443"
path = "/x?y"
methods = ["GET", "P OST"]
upstream = "api"
strip_prefix = true
[routes.rate_limit]
key = "sub"
requests = 0
per = "1s"
burst = 0

[[routes]]
host = "*.example.com"
upstream = "api"
methods = []
[routes.jwt]
issuers = ["main"]
audiences = [""]
scopes_all = ["read write"]
scopes_any = ["x"]
claims = [{{ claim = "t", equals = 1979-05-27 }}, {{ claim = "u" }}, {{ claim = "v", present = false }}, {{ equals = 1, one_of = [1] }}]
token_cookie = "a b"
token_query = "a&b"
[routes.rate_limit]
key = "user"
per = "1s"
"#
    );
    assert_eq!(
        errors(&text),
        [
            "gatewise.toml:19:8: routes[1].host: \"api.example.com:443\": write the host without a port \
             (ports are ignored when matching)",
            "gatewise.toml:20:8: routes[1].path: must not contain a query or fragment (\"?\" or \"#\")",
            "gatewise.toml:21:19: routes[1].methods[1]: invalid method \"P OST\"",
            "gatewise.toml:23:16: routes[1].strip_prefix: only applies to `path_prefix` routes",
            "gatewise.toml:25:7: routes[1].rate_limit.key: \"sub\" is read from the token: the route \
             needs a [routes.jwt] or [routes.introspection] policy",
            "gatewise.toml:26:12: routes[1].rate_limit.requests: must be greater than zero",
            "gatewise.toml:28:9: routes[1].rate_limit.burst: must be greater than zero",
            "gatewise.toml:30:1: routes[2]: needs `path` (exact match) or `path_prefix`",
            "gatewise.toml:31:8: routes[2].host: wildcard hosts are not supported: write one route per host",
            "gatewise.toml:33:11: routes[2].methods: must not be empty (leave `methods` out to match any method)",
            "gatewise.toml:36:14: routes[2].jwt.audiences[0]: must not be empty",
            "gatewise.toml:38:14: routes[2].jwt.scopes_any: `scopes_all` and `scopes_any` are exclusive: keep one",
            "gatewise.toml:39:35: routes[2].jwt.claims[0].equals: dates are not claim values: write a \
             number of seconds (NumericDate) or a string",
            "gatewise.toml:39:49: routes[2].jwt.claims[1]: needs one of `equals`, `one_of` or `present = true`",
            "gatewise.toml:39:91: routes[2].jwt.claims[2].present: only `present = true` is supported \
             (leave the condition out to not require the claim)",
            "gatewise.toml:39:100: routes[2].jwt.claims[3].claim: missing required key",
            "gatewise.toml:39:123: routes[2].jwt.claims[3].one_of: `equals` and `one_of` are exclusive: keep one",
            "gatewise.toml:40:16: routes[2].jwt.token_cookie: invalid cookie name \"a b\"",
            "gatewise.toml:41:15: routes[2].jwt.token_query: invalid query parameter name \"a&b\"",
            // A missing key is placed at its table's header.
            "gatewise.toml:42:1: routes[2].rate_limit.requests: missing required key",
            "gatewise.toml:43:7: routes[2].rate_limit.key: unknown key \"user\": expected \"client_id\", \
             \"sub\", \"client_ip\" or \"header:<name>\"",
        ]
    );
}

#[test]
fn header_rules() {
    let text = format!(
        r#"{BASE}
[routes.headers]
request_add = {{ "Content-Length" = "5", "X-A" = "a\nb", "X-B" = " padded" }}
request_set = {{ "x-a" = "1" }}
request_remove = ["Bad Header", "Host"]
response_set = {{ "X-A" = "fine in the other direction" }}
"#
    );
    assert_eq!(
        errors(&text),
        [
            "gatewise.toml:19:36: routes[0].headers.request_add.Content-Length: \"Content-Length\" \
             cannot be changed by header rules: it is managed by the proxy (hop-by-hop or framing)",
            "gatewise.toml:19:49: routes[0].headers.request_add.X-A: header values must not contain \
             control characters (such as line breaks)",
            "gatewise.toml:19:65: routes[0].headers.request_add.X-B: header values must not start or \
             end with whitespace",
            "gatewise.toml:20:25: routes[0].headers.request_set.x-a: \"x-a\" already appears in request_add",
            "gatewise.toml:21:19: routes[0].headers.request_remove[0]: invalid header name \"Bad Header\"",
            "gatewise.toml:21:33: routes[0].headers.request_remove[1]: \"Host\" cannot be changed by \
             header rules: use the upstream's `host_header`",
        ]
    );
}

#[test]
fn server_rules() {
    let text = r#"
[server]
max_header_bytes = "2MiB"
max_body_bytes = "10MB"
header_read_timeout = "0ms"
[server.tls]
certificates = [{ cert = "a.pem" }, { cert = "", key = "b.key" }]
"#;
    assert_eq!(
        errors(text),
        [
            "gatewise.toml:3:20: server.max_header_bytes: must be between 1KiB and 1MiB (1024 to \
             1048576 bytes), not 2097152",
            "gatewise.toml:4:18: server.max_body_bytes: invalid size \"10MB\": unknown unit \"MB\": \
             sizes use binary units (KiB, MiB, GiB)",
            "gatewise.toml:5:23: server.header_read_timeout: must be greater than zero",
            "gatewise.toml:7:17: server.tls.certificates[0].key: missing required key",
            "gatewise.toml:7:46: server.tls.certificates[1].cert: must not be empty",
        ]
    );
}

#[test]
fn warnings_for_legal_but_odd_settings() {
    let text = r#"
[[issuers]]
name = "main"
issuer = "https://as.example.com"
discovery = "http://as.example.com/.well-known/openid-configuration"
leeway = "10m"
jwks_max_age = "2d"

[[issuers]]
name = "spare"
issuer = "https://spare.example.com"
jwks_uri = "http://localhost:9100/jwks.json"

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000", "http://127.0.0.1:9000"]

[[upstreams]]
name = "old"
targets = ["http://127.0.0.1:9001"]

[[routes]]
path_prefix = "/"
methods = ["GET", "get"]
upstream = "api"
[routes.jwt]
issuers = ["main"]
audiences = ["a", "a"]
"#;
    assert_eq!(
        warnings(text),
        [
            "gatewise.toml:5:13: issuers[0].discovery: plain http to a host that is not loopback: \
             keys fetched this way can be replaced in transit, use https",
            "gatewise.toml:6:10: issuers[0].leeway: leeway of 10m is over 5 minutes: expired tokens \
             stay usable that long",
            "gatewise.toml:7:16: issuers[0].jwks_max_age: jwks_max_age of 2d is over 24 hours: revoked \
             keys stay trusted that long",
            "gatewise.toml:9:1: issuers[1]: issuer \"spare\" is not used by any route",
            "gatewise.toml:16:37: upstreams[0].targets[1]: \"http://127.0.0.1:9000\" is listed twice",
            "gatewise.toml:18:1: upstreams[1]: upstream \"old\" is not used by any route",
            "gatewise.toml:24:19: routes[0].methods[1]: GET is listed twice",
            "gatewise.toml:28:19: routes[0].jwt.audiences[1]: \"a\" is listed twice",
        ]
    );
}

#[test]
fn an_empty_file_compiles_with_a_warning() {
    assert_eq!(
        warnings(""),
        ["gatewise.toml: routes: no routes: every request will be answered 404"]
    );
}

/// The whole listing of a file with a bit of everything wrong, as a
/// snapshot: review changes to wording with `cargo insta review`.
#[test]
fn listing_snapshot() {
    let text = r#"
[server]
listen = "0.0.0.0"
shutdown_grace = "soon"

[[issuers]]
name = "idp"
issuer = "https://idp.example.com"
discovery = "not a url"
unknown_kid_ttl = "1y"

[[upstreams]]
name = "api"
targets = []
balance = "least_requests"
ca_file = "ca.pem"

[[routes]]
name = "api"
path_prefix = "api"
upstream = "api"
inspect = "tokens"
[routes.jwt]
issuers = []
audiences = ["https://api.example.com"]
require_at_jwt = "yes"
[routes.rate_limit]
key = "header:X Api Key"
requests = 10
per = "0s"
"#;
    let listing: String = errors(text).iter().map(|e| format!("{e}\n")).collect();
    insta::assert_snapshot!(listing);
}

#[test]
fn wrong_types_say_what_was_found_and_what_is_expected() {
    let text = r#"
[[upstreams]]
name = 1979-05-27
targets = "http://127.0.0.1:9000"
balance = 5
[[routes]]
inspect = ["token"]
"#;
    assert_eq!(
        errors(text),
        [
            "gatewise.toml:3:8: upstreams[0].name: invalid type: datetime, expected a string",
            "gatewise.toml:4:11: upstreams[0].targets: invalid type: string \"http://127.0.0.1:9000\", \
             expected an array",
            "gatewise.toml:5:11: upstreams[0].balance: invalid type: integer `5`, expected one of \
             `round_robin`, `least_requests`",
            "gatewise.toml:6:1: routes[0]: needs `path` (exact match) or `path_prefix`",
            "gatewise.toml:6:1: routes[0].upstream: missing required key",
            "gatewise.toml:7:11: routes[0].inspect: invalid type: array, expected one of `token`, \
             `discovery`, `jwks`, `introspection`",
        ]
    );
}

#[test]
fn route_hosts_are_bare_host_names() {
    let bad = |host: &str| {
        errors(&BASE.replace(
            "path_prefix = \"/api\"",
            &format!("path_prefix = \"/api\"\nhost = \"{host}\""),
        ))
    };
    assert_eq!(
        bad("https://api.example.com"),
        [
            "gatewise.toml:13:8: routes[0].host: \"https://api.example.com\": write the host alone, without scheme or path"
        ]
    );
    assert_eq!(
        bad("[::1]:443"),
        [
            "gatewise.toml:13:8: routes[0].host: \"[::1]:443\": write the host without a port (ports are ignored when matching)"
        ]
    );
    assert_eq!(
        bad("a b"),
        [
            "gatewise.toml:13:8: routes[0].host: invalid host \"a b\": invalid international domain name"
        ]
    );
}

#[test]
fn introspector_rules() {
    let text = r#"
[[introspectors]]
name = "main"
endpoint = "ftp://as.example.com/introspect"
client_id = ""
client_secret_env = "GATEWISE-SECRET"
cache_ttl = "0s"
negative_ttl = "0s"
timeout = "0ms"

[[introspectors]]
name = "main"
endpoint = "https://gw:pw@as.example.com/introspect"
client_id = "gateway"
client_secret_env = "A"
client_secret_file = "a"
auth = "private_key_jwt"

[[introspectors]]
name = ""
endpoint = "not a url"
client_secret_file = ""

[[introspectors]]
name = "other"
"#;
    assert_eq!(
        errors(text),
        [
            "gatewise.toml:4:12: introspectors[0].endpoint: must be an http or https URL, not \"ftp\"",
            "gatewise.toml:5:13: introspectors[0].client_id: must not be empty",
            "gatewise.toml:6:21: introspectors[0].client_secret_env: invalid environment variable \
             name \"GATEWISE-SECRET\": letters, digits and \"_\", not starting with a digit",
            "gatewise.toml:7:13: introspectors[0].cache_ttl: must be greater than zero",
            "gatewise.toml:8:16: introspectors[0].negative_ttl: must be greater than zero",
            "gatewise.toml:9:11: introspectors[0].timeout: must be greater than zero",
            "gatewise.toml:12:8: introspectors[1].name: introspector name \"main\" is already used \
             by introspectors[0]",
            "gatewise.toml:13:12: introspectors[1].endpoint: must not carry credentials: the gateway \
             authenticates with `client_id` and `client_secret_env` or `client_secret_file`",
            "gatewise.toml:16:22: introspectors[1].client_secret_file: `client_secret_env` and \
             `client_secret_file` are exclusive: keep one",
            "gatewise.toml:17:8: introspectors[1].auth: unknown value `private_key_jwt`, expected \
             `client_secret_basic` or `client_secret_post`",
            // A missing key is placed at its table's header.
            "gatewise.toml:19:1: introspectors[2].client_id: missing required key",
            "gatewise.toml:20:8: introspectors[2].name: must not be empty",
            "gatewise.toml:21:12: introspectors[2].endpoint: invalid URL \"not a url\": relative URL \
             without a base",
            "gatewise.toml:22:22: introspectors[2].client_secret_file: must not be empty",
            "gatewise.toml:24:1: introspectors[3].endpoint: missing required key",
            "gatewise.toml:24:1: introspectors[3].client_id: missing required key",
            "gatewise.toml:24:1: introspectors[3]: needs `client_secret_env` or `client_secret_file`",
        ]
    );
}

/// The secret itself is refused, whatever its type, with a message saying
/// where it goes instead; its value is never repeated.
#[test]
fn a_literal_client_secret_is_refused() {
    const REFUSAL: &str = "secrets are not written in the configuration file: use \
                           `client_secret_env` (the name of an environment variable) or \
                           `client_secret_file` (a file holding the secret)";
    for (value, column) in [
        ("\"s3cr3t-value\"", 17),
        ("{ value = \"s3cr3t-value\" }", 17),
    ] {
        let text = format!(
            r#"
[[introspectors]]
name = "main"
endpoint = "https://as.example.com/introspect"
client_id = "gateway"
client_secret = {value}
"#
        );
        let errs = compile(&text).unwrap_err();
        let [e] = errs.as_slice() else {
            panic!("one error: {errs:?}")
        };
        assert_eq!(e.path, "introspectors[0].client_secret");
        assert_eq!((e.line, e.column), (Some(6), Some(column)));
        assert_eq!(e.message, REFUSAL);
        assert!(!format!("{errs:?}").contains("s3cr3t"), "{errs:?}");
    }

    // Next to a reference, the reference is still checked.
    let text = r#"
[[introspectors]]
name = "main"
endpoint = "https://as.example.com/introspect"
client_id = "gateway"
client_secret = "s3cr3t-value"
client_secret_env = "1SECRET"
"#;
    assert_eq!(
        errors(text),
        [
            format!("gatewise.toml:6:17: introspectors[0].client_secret: {REFUSAL}"),
            "gatewise.toml:7:21: introspectors[0].client_secret_env: invalid environment variable \
             name \"1SECRET\": letters, digits and \"_\", not starting with a digit"
                .to_owned(),
        ]
    );
}

#[test]
fn introspection_route_rules() {
    let text = format!(
        r#"{BASE}
[[introspectors]]
name = "main"
endpoint = "https://as.example.com/introspect"
client_id = "gateway"
client_secret_env = "SECRET"

[[routes]]
name = "both"
path_prefix = "/both"
upstream = "api"
repair = true
[routes.jwt]
issuers = ["main"]
audiences = ["a"]
[routes.introspection]
introspector = "main"

[[routes]]
name = "legacy"
path_prefix = "/legacy"
upstream = "api"
inspect = "discovery"
repair = true
[routes.introspection]
introspector = "mian"
audiences = [""]
scopes_all = ["read write"]
token_cookie = "a b"
token_query = "a&b"
colour = "blue"

[[routes]]
path = "/missing"
upstream = "api"
[routes.introspection]
forward_claims = "yes"
scopes_all = ["read"]
scopes_any = []
[routes.rate_limit]
key = "client_id"
requests = 1
per = "1s"
"#
    );
    assert_eq!(
        errors(&text),
        [
            "gatewise.toml:28:10: routes[1].repair: only applies to routes with `inspect = \"token\"`",
            "gatewise.toml:32:1: routes[1].introspection: route \"both\" has both [routes.jwt] and \
             [routes.introspection]: keep one (jwt checks tokens locally, introspection asks the \
             authorization server)",
            "gatewise.toml:40:10: routes[2].repair: only applies to routes with `inspect = \"token\"`",
            "gatewise.toml:42:16: routes[2].introspection.introspector: unknown introspector \"mian\" \
             (defined: \"main\")",
            "gatewise.toml:43:14: routes[2].introspection.audiences[0]: must not be empty",
            "gatewise.toml:44:15: routes[2].introspection.scopes_all[0]: invalid scope \"read write\": \
             one scope per entry, without spaces, quotes or backslashes (RFC 6749 §3.3)",
            "gatewise.toml:45:16: routes[2].introspection.token_cookie: invalid cookie name \"a b\"",
            "gatewise.toml:46:15: routes[2].introspection.token_query: invalid query parameter name \
             \"a&b\"",
            "gatewise.toml:47:1: routes[2].introspection.colour: unknown key `colour`, expected one of \
             `introspector`, `audiences`, `scopes_all`, `scopes_any`, `token_cookie`, `token_query`, \
             `forward_claims`, `strip_authorization`",
            "gatewise.toml:52:1: routes[3].introspection.introspector: missing required key",
            "gatewise.toml:53:18: routes[3].introspection.forward_claims: invalid type: string \
             \"yes\", expected true or false",
            "gatewise.toml:55:14: routes[3].introspection.scopes_any: `scopes_all` and `scopes_any` \
             are exclusive: keep one",
        ]
    );
}

/// `repair` needs `inspect = "token"`; when `inspect` itself is wrong, only
/// that is reported.
#[test]
fn repair_needs_inspect_token() {
    let route = |keys: &str| {
        format!(
            "[[upstreams]]\nname = \"api\"\ntargets = [\"http://127.0.0.1:9000\"]\n\
             [[routes]]\npath = \"/token\"\nupstream = \"api\"\n{keys}"
        )
    };
    assert_eq!(
        errors(&route("repair = true\n")),
        ["gatewise.toml:7:10: routes[0].repair: only applies to routes with `inspect = \"token\"`"]
    );
    assert_eq!(
        errors(&route("inspect = \"tokens\"\nrepair = true\n")),
        [
            "gatewise.toml:7:11: routes[0].inspect: unknown value `tokens`, expected one of `token`, \
             `discovery`, `jwks`, `introspection`"
        ]
    );
    assert!(
        support::ok(&route("repair = false\n"))
            .config
            .dynamic
            .routes[0]
            .inspect
            .is_none()
    );
    assert!(
        support::ok(&route("inspect = \"token\"\nrepair = true\n"))
            .config
            .dynamic
            .routes[0]
            .repair
    );
}

/// `client_id` and `sub` rate limits need a token policy: either kind.
#[test]
fn token_rate_keys_need_a_jwt_or_introspection_policy() {
    let text = |policy: &str| {
        format!(
            r#"
[[issuers]]
name = "main"
issuer = "https://as.example.com"
jwks_uri = "https://as.example.com/jwks.json"

[[introspectors]]
name = "main"
endpoint = "https://as.example.com/introspect"
client_id = "gateway"
client_secret_env = "SECRET"

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000"]

[[routes]]
path_prefix = "/"
upstream = "api"
{policy}
[routes.rate_limit]
key = "sub"
requests = 1
per = "1s"
"#
        )
    };
    let jwt = "[routes.jwt]\nissuers = [\"main\"]\naudiences = [\"a\"]";
    let introspection = "[routes.introspection]\nintrospector = \"main\"";
    // The unused one of the two is only a warning.
    assert_eq!(
        warnings(&text(jwt)),
        ["gatewise.toml:7:1: introspectors[0]: introspector \"main\" is not used by any route"]
    );
    assert_eq!(
        warnings(&text(introspection)),
        ["gatewise.toml:2:1: issuers[0]: issuer \"main\" is not used by any route"]
    );
    assert_eq!(
        errors(&text("")),
        [
            "gatewise.toml:22:7: routes[0].rate_limit.key: \"sub\" is read from the token: the route \
             needs a [routes.jwt] or [routes.introspection] policy"
        ]
    );
}

#[test]
fn introspection_warnings() {
    let text = r#"
[[introspectors]]
name = "main"
endpoint = "http://as.example.com/introspect"
client_id = "gateway"
client_secret_env = "SECRET"

[[introspectors]]
name = "spare"
endpoint = "http://127.0.0.1:9100/introspect"
client_id = "gateway"
client_secret_file = "secret.txt"

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000"]

[[routes]]
path_prefix = "/"
upstream = "api"
[routes.introspection]
introspector = "main"
audiences = ["a", "a"]
scopes_all = ["read", "read"]
"#;
    assert_eq!(
        warnings(text),
        [
            "gatewise.toml:4:12: introspectors[0].endpoint: plain http to a host that is not \
             loopback: the client secret and the tokens cross the network in clear, use https",
            "gatewise.toml:8:1: introspectors[1]: introspector \"spare\" is not used by any route",
            "gatewise.toml:23:19: routes[0].introspection.audiences[1]: \"a\" is listed twice",
            "gatewise.toml:24:23: routes[0].introspection.scopes_all[1]: \"read\" is listed twice",
        ]
    );
}
