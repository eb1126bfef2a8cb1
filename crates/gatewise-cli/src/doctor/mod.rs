//! `gatewise doctor`: offline diagnosis of captured responses, tokens and
//! client error messages.

use crate::input;
use crate::render::{self, Format};
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use gatewise_core::capture::{self, DEFAULT_MAX_INPUT};
use gatewise_core::diagnose::{self, Context, Expect};
use gatewise_core::jose::jwt::{self, Keys, Options, TokenKind};
use gatewise_core::{Report, catalogue, explain};
use std::io::Write as _;

mod live;

#[derive(Debug, Subcommand)]
pub(crate) enum Doctor {
    /// Judge a captured HTTP response (token, introspection, discovery, JWKS, revocation).
    ///
    /// FILE is raw HTTP text as `curl -si` prints it (an optional request, then
    /// the response), a HAR file, or a bare body. Use `-` for stdin.
    ///
    /// Example: curl -si -X POST https://as.example.com/token -d grant_type=client_credentials
    ///   -u "$ID:$SECRET" > capture.http && gatewise doctor response capture.http
    Response(ResponseArgs),
    /// Decode and judge a JWT without trusting it; verify it with --jwks or --secret-env.
    ///
    /// Example: gatewise doctor jwt "$TOKEN" --jwks jwks.json --issuer https://as.example.com
    ///   --audience https://api.example.com
    Jwt(JwtArgs),
    /// Explain what an OAuth client library printed: likely causes, ranked, and what to run next.
    ///
    /// Example: gatewise doctor explain "missing field `token_type` at line 1 column 44"
    Explain(ExplainArgs),
    /// List every rule and finding code the doctor knows.
    Rules(RulesArgs),
    /// Fetch an issuer's metadata (both well-known forms), its JWK Set, and judge them live.
    ///
    /// Example: gatewise doctor discovery https://as.example.com
    Discovery(live::DiscoveryArgs),
    /// Run a real token request and say where it breaks (transport, response, token).
    ///
    /// Only the client_credentials grant in this version.
    /// Example: gatewise doctor token --issuer https://as.example.com --client-id svc
    ///   --client-secret-env CLIENT_SECRET --scope orders.read
    Token(live::TokenArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExpectArg {
    Token,
    Introspection,
    Discovery,
    Jwks,
    Revocation,
}

#[derive(Debug, Args)]
pub(crate) struct ResponseArgs {
    /// The capture file, or `-` for stdin.
    file: String,
    /// What the response should be; the default judges token success and error responses.
    #[arg(long, value_enum, default_value = "token")]
    expect: ExpectArg,
    /// The scope the client requested (when the request is not in the capture); `openid` makes id_token required.
    #[arg(long, value_name = "SCOPE")]
    request_scope: Option<String>,
    /// The issuer the client expects (for discovery documents).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Current time as Unix seconds (default: the clock).
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// Largest input accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT)]
    max_input: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    /// Decide from the token.
    Auto,
    /// An OAuth access token (RFC 9068 rules).
    Access,
    /// An OpenID Connect ID token.
    Id,
}

#[derive(Debug, Args)]
pub(crate) struct JwtArgs {
    /// The token, or `-` to read it from stdin (keeps it out of shell history).
    token: String,
    /// A JWK Set file to verify the signature with.
    #[arg(long, value_name = "FILE")]
    jwks: Option<String>,
    /// Read the HMAC secret for HS* tokens from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["secret_file", "secret"])]
    secret_env: Option<String>,
    /// Read the HMAC secret for HS* tokens from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "secret")]
    secret_file: Option<String>,
    /// The HMAC secret itself (leaks into shell history: prefer --secret-env).
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// The expected issuer (exact match).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// An acceptable audience (repeat for any-of).
    #[arg(long, value_name = "AUD")]
    audience: Vec<String>,
    /// The client id (ID token audience and azp).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The nonce sent in the authentication request.
    #[arg(long)]
    nonce: Option<String>,
    /// The access token issued with this ID token, to check at_hash.
    #[arg(long, value_name = "TOKEN")]
    access_token: Option<String>,
    /// What the token is supposed to be.
    #[arg(long, value_enum, default_value = "auto")]
    expect: KindArg,
    /// Current time as Unix seconds (default: the clock).
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// Leeway for exp, nbf and iat, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    leeway: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The message the client printed (quote it), or `-` to read it from stdin.
    message: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// Output format (markdown prints the catalogue as docs/findings.md has it).
    #[arg(long, value_enum, default_value = "markdown")]
    format: Format,
}

/// Runs a doctor subcommand; returns the exit code.
pub(crate) fn run(cmd: Doctor) -> anyhow::Result<u8> {
    match cmd {
        Doctor::Response(a) => response(a),
        Doctor::Jwt(a) => jwt_cmd(a),
        Doctor::Explain(a) => explain_cmd(a),
        Doctor::Rules(a) => rules(a),
        Doctor::Discovery(a) => live::discovery(a),
        Doctor::Token(a) => live::token(a),
    }
}

fn response(a: ResponseArgs) -> anyhow::Result<u8> {
    let bytes = input::read_capped(&a.file, a.max_input)?;
    let capture = capture::parse(&bytes);
    let expect = match a.expect {
        ExpectArg::Token => Expect::Token,
        ExpectArg::Introspection => Expect::Introspection,
        ExpectArg::Discovery => Expect::Discovery,
        ExpectArg::Jwks => Expect::Jwks,
        ExpectArg::Revocation => Expect::Revocation,
    };
    let ctx = Context {
        expect,
        request_scope: a.request_scope,
        issuer: a.issuer,
        now: Some(a.now.unwrap_or_else(crate::clock::now)),
    };
    let report = Report::new(a.file.clone(), diagnose::response(&capture, &ctx));
    render::report(&report, a.format, None)?;
    Ok(report.verdict.exit_code())
}

fn read_arg_or_stdin(v: &str, what: &str) -> anyhow::Result<String> {
    if v == "-" {
        let bytes = input::read_capped("-", 1024 * 1024)?;
        let s = String::from_utf8(bytes)
            .with_context(|| format!("the {what} on stdin is not UTF-8"))?;
        Ok(s.trim().to_string())
    } else {
        Ok(v.to_string())
    }
}

fn jwt_cmd(a: JwtArgs) -> anyhow::Result<u8> {
    let token = read_arg_or_stdin(&a.token, "token")?;
    let keys = if let Some(path) = &a.jwks {
        let bytes = input::read_capped(path, DEFAULT_MAX_INPUT)?;
        let bytes = bytes
            .strip_prefix(b"\xEF\xBB\xBF".as_slice())
            .unwrap_or(&bytes);
        let doc: serde_json::Value = serde_json::from_slice(bytes).with_context(|| {
            format!(
                "{path} is not JSON; judge it with `gatewise doctor response --expect jwks {path}`"
            )
        })?;
        Keys::Jwks(doc)
    } else if let Some(var) = &a.secret_env {
        match input::env(var) {
            Some(s) => Keys::Secret(s.into_bytes()),
            None => bail!("environment variable {var} is not set"),
        }
    } else if let Some(path) = &a.secret_file {
        let mut s = input::read_capped(path, 64 * 1024)?;
        while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            s.pop();
        }
        Keys::Secret(s)
    } else if let Some(s) = &a.secret {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "gatewise: warning: --secret puts the secret in shell history and process lists; prefer --secret-env VAR or --secret-file FILE"
            );
        }
        Keys::Secret(s.clone().into_bytes())
    } else {
        Keys::None
    };
    let opts = Options {
        now: a.now.unwrap_or_else(crate::clock::now),
        leeway: a.leeway,
        issuer: a.issuer,
        audiences: a.audience,
        kind: match a.expect {
            KindArg::Auto => TokenKind::Auto,
            KindArg::Access => TokenKind::Access,
            KindArg::Id => TokenKind::Id,
        },
        nonce: a.nonce,
        access_token: a.access_token,
        client_id: a.client_id,
        keys,
    };
    let subject = if a.token == "-" {
        "-".to_string()
    } else {
        "token".to_string()
    };
    let report = Report::new(subject, jwt::inspect(&token, &opts));
    let decoded = jwt::decode(&token).ok().map(|j| {
        serde_json::json!({
            "header": serde_json::Value::Object(j.header),
            "claims": gatewise_core::secret::mask_json(&serde_json::Value::Object(j.claims)),
        })
    });
    if a.format == Format::Human
        && let Some(d) = &decoded
    {
        writeln!(
            anstream::stdout(),
            "header: {}\nclaims: {}\n",
            d["header"],
            d["claims"]
        )?;
    }
    render::report(&report, a.format, decoded.map(|d| ("decoded", d)))?;
    Ok(report.verdict.exit_code())
}

fn explain_cmd(a: ExplainArgs) -> anyhow::Result<u8> {
    let message = read_arg_or_stdin(&a.message, "message")?;
    let ex = explain::explain(&message);
    let subject: String = message.chars().take(80).collect();
    let report = Report::new(subject, ex.findings);
    let libs: Vec<serde_json::Value> = ex
        .recognised
        .iter()
        .map(|r| serde_json::json!({"library": r.library, "pattern": r.pattern}))
        .collect();
    if a.format == Format::Human && !ex.recognised.is_empty() {
        let names: Vec<&str> = ex.recognised.iter().map(|r| r.library).collect();
        writeln!(anstream::stdout(), "recognised: {}\n", names.join(", "))?;
    }
    render::report(
        &report,
        a.format,
        Some(("recognised", serde_json::Value::Array(libs))),
    )?;
    // Explaining never fails the command: the findings are hypotheses.
    Ok(0)
}

fn rules(a: RulesArgs) -> anyhow::Result<u8> {
    match a.format {
        Format::Json => {
            let all: Vec<serde_json::Value> = catalogue::checks()
                .iter()
                .map(|c| serde_json::json!({"rule": c.rule, "code": c.code, "severity": c.severity, "spec": c.spec, "summary": c.summary}))
                .collect();
            writeln!(
                anstream::stdout(),
                "{}",
                serde_json::to_string_pretty(&all)?
            )?;
        }
        _ => {
            write!(anstream::stdout(), "{}", catalogue::markdown())?;
        }
    }
    Ok(0)
}
