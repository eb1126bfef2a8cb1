//! `gatewise doctor explain "MESSAGE"`: recognise what an OAuth client
//! library printed and answer with the likely causes, most likely first,
//! each with the doctor command to run next.
//!
//! The recogniser is a table of case-insensitive substring patterns (no
//! regular expressions). A pattern names the library (or provider) that
//! prints it, a tier (a provider quirk, a precise sub-reason, a library
//! message, a bare OAuth error code, a library's catch-all, and last the
//! generic "invalid OAuth response" phrase) and its causes in order of
//! likelihood. Every matching pattern contributes its causes; a cause reached
//! by several patterns keeps its best rank `(tier, position, pattern)`, so
//! specific patterns outrank generic ones. The findings are hypotheses: every
//! one has severity `info`.
//!
//! Sources: `oauth-rules.md` (rule ids, catalogue F01..F73, section 3) and
//! `client-messages.md` (verbatim output of six client libraries).

use crate::finding::{Check, Finding, Severity};

/// Largest message examined, in bytes; longer input is cut at a character boundary.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Longest quoted fragment in a finding's evidence, in bytes.
const MAX_QUOTE_BYTES: usize = 160;

/// The next step when the exchange itself is needed.
macro_rules! capture_token {
    () => {
        "Capture the exchange (`curl -si -X POST <token-url> -d grant_type=... > capture.http`, \
         or save a HAR from the browser or proxy) and run \
         `gatewise doctor response capture.http --expect token`."
    };
}

/// Defines a public [`Check`] and the private [`Cause`] that explains it.
macro_rules! cause {
    (
        $check:ident, $cause:ident,
        rule: $rule:literal,
        code: $code:literal,
        spec: $spec:literal,
        summary: $summary:literal,
        title: $title:literal,
        cause: $text:literal,
        fix: $fix:expr $(,)?
    ) => {
        #[doc = $summary]
        pub const $check: Check = Check {
            rule: $rule,
            code: $code,
            severity: Severity::Info,
            spec: $spec,
            summary: $summary,
        };
        const $cause: Cause = Cause {
            check: &$check,
            title: $title,
            cause: $text,
            fix: $fix,
        };
    };
}

/// One likely cause: the check it reports and the words a person reads.
struct Cause {
    check: &'static Check,
    title: &'static str,
    cause: &'static str,
    fix: &'static str,
}

// ---------------------------------------------------------------------------
// Transport, media type and body shape
// ---------------------------------------------------------------------------

cause!(
    HTML_INSTEAD_OF_JSON, C_HTML,
    rule: "HT-01",
    code: "explain-html-instead-of-json",
    spec: "RFC 9110 §8.3; RFC 6749 §5.1",
    summary: "The client got an HTML page where a JSON token response was expected.",
    title: "An HTML page came back instead of the JSON token response",
    cause: "Something other than the token endpoint answered: the login page of an SSO or \
            authentication proxy, a WAF or CDN block page, a single-page-app fallback that serves \
            index.html for unknown paths, or a web framework's error page. The client tried to \
            parse `<html` or `<!DOCTYPE` as JSON.",
    fix: concat!(
        "Compare the token URL with `token_endpoint` in the provider's metadata and exempt it \
         from SSO proxies and WAF rules. ",
        capture_token!(),
        " It shows the status, the Content-Type and the first bytes of the body."
    ),
);

cause!(
    PROXY_ERROR_PAGE, C_PROXY_ERROR_PAGE,
    rule: "ER-04",
    code: "explain-proxy-error-page",
    spec: "RFC 6749 §5.2; RFC 9110 §15.6",
    summary: "A gateway error page (502/503/504) came back instead of the authorization server's answer.",
    title: "A proxy or load balancer answered with its own error page (502/503/504)",
    cause: "The reverse proxy, ingress or API gateway in front of the authorization server could \
            not reach it (server down or restarting, wrong upstream port, TLS to the upstream \
            failing, timeout) and returned an HTML error page. Clients that ignore the status \
            (requests-oauthlib, the Rust oauth2 crates) report a parse error instead of the 502.",
    fix: concat!(
        "Check the proxy's and the authorization server's logs at the time of the request and \
         the upstream's health. ",
        capture_token!()
    ),
);

cause!(
    REDIRECT_TO_LOGIN, C_REDIRECT,
    rule: "TR-01",
    code: "explain-redirect-to-login",
    spec: "RFC 6749 §5.1",
    summary: "The token endpoint answered with a redirect, usually to a login page.",
    title: "The token request was redirected, usually to a login page",
    cause: "An authentication proxy (oauth2-proxy, an SSO agent, a cloud identity-aware proxy), a \
            session filter in the application, or an http-to-https or trailing-slash redirect sits \
            in front of the token endpoint. Token endpoints are called server to server and must \
            answer 200 JSON directly; the POST body is lost on a redirect.",
    fix: "Use the exact `token_endpoint` from the metadata (https, exact path) and exclude it from \
          login filters and proxies. Capture without following redirects \
          (`curl -si -X POST <token-url> ... > capture.http`) and run \
          `gatewise doctor response capture.http --expect token`; it reports the status and Location.",
);

cause!(
    WRONG_TOKEN_ENDPOINT, C_WRONG_ENDPOINT,
    rule: "MD-03",
    code: "explain-wrong-token-endpoint",
    spec: "RFC 8414 §2; RFC 6749 §3.2",
    summary: "The client called a URL or used a method that is not the token endpoint (404/405).",
    title: "The client is calling the wrong URL or method for the token endpoint",
    cause: "A mistyped or outdated token URL (v1 instead of v2 path, a missing realm or tenant \
            segment, a relative path resolved against the wrong base URL) or a GET instead of a \
            POST reaches a route that answers 404 or 405, often with an HTML page.",
    fix: concat!(
        "Take `token_endpoint` from the discovery document instead of building it by hand, and \
         POST a form body. Judge the metadata with `curl -si <issuer>/.well-known/openid-configuration \
         > metadata.http` and `gatewise doctor response metadata.http --expect discovery`, then ",
        capture_token!()
    ),
);

cause!(
    FORM_ENCODED_RESPONSE, C_FORM,
    rule: "TR-02",
    code: "explain-form-encoded-response",
    spec: "RFC 6749 §5.1",
    summary: "The token response is form-encoded (access_token=...&...) instead of JSON.",
    title: "The token response is form-encoded instead of JSON",
    cause: "GitHub (and GitHub Enterprise) answer `access_token=...&scope=...&token_type=bearer` as \
            application/x-www-form-urlencoded unless the token request sends \
            `Accept: application/json`; legacy Facebook Graph (before v2.3) did the same. A client \
            that always parses JSON fails on the leading `a`.",
    fix: concat!(
        "Send `Accept: application/json` with the token request (or use the library's GitHub \
         provider or compliance hook). ",
        capture_token!()
    ),
);

cause!(
    CONTENT_TYPE_NOT_JSON, C_CONTENT_TYPE,
    rule: "TR-02",
    code: "explain-content-type-not-json",
    spec: "RFC 6749 §5.1",
    summary: "The token response is labelled text/plain, text/html or text/javascript instead of application/json.",
    title: "The token response is labelled with a media type other than application/json",
    cause: "Some providers label valid JSON as `text/plain`, `text/javascript` (Dropbox) or \
            `text/html` (Tencent QQ, Deezer). Strict clients (the Rust oauth2 and openidconnect \
            crates, oauth4webapi, Dart oauth2, Spring's message converters) check the Content-Type \
            before parsing; lenient ones (Authlib, requests-oauthlib) do not notice.",
    fix: concat!(
        "If you run the server, send `Content-Type: application/json`. Otherwise relax the client \
         (a custom HTTP client or converter that accepts the type), or put gatewise in front to \
         rewrite the header. ",
        capture_token!()
    ),
);

cause!(
    GZIP_NOT_DECODED, C_GZIP,
    rule: "HT-02",
    code: "explain-gzip-not-decoded",
    spec: "RFC 9110 §8.4",
    summary: "The body is gzip-compressed but the client read it as text (first byte 0x1F).",
    title: "The body is gzip-compressed and the client did not decompress it",
    cause: "The body starts with the gzip magic bytes 1F 8B (`\\u001f` in the error). A proxy \
            stripped `Content-Encoding: gzip`, or the server compresses regardless of \
            `Accept-Encoding` (Akamai-fronted servers, Salesforce on the code exchange), and the \
            client's HTTP stack does not decompress automatically.",
    fix: "Enable automatic decompression in the client, or send `Accept-Encoding: identity`; fix a \
          proxy that drops `Content-Encoding`. Capture with \
          `curl -si --raw -X POST <token-url> ... > capture.http` and run \
          `gatewise doctor response capture.http --expect token`; it detects unlabelled gzip.",
);

cause!(
    EMPTY_BODY, C_EMPTY,
    rule: "TR-03",
    code: "explain-empty-body",
    spec: "RFC 6749 §5.1; RFC 8259 §2",
    summary: "The token endpoint answered with an empty body.",
    title: "The token endpoint answered with an empty body",
    cause: "A proxy, firewall or TLS-inspecting appliance answered with an empty response; an API \
            gateway rejected the request (often a 401 or 403 without a body) before it reached \
            the authorization server; or the server failed after sending the headers.",
    fix: concat!(
        "Look at the status of the empty response: 401/403 points at a gateway in front of the \
         server, 5xx at the server. ",
        capture_token!()
    ),
);

cause!(
    TRUNCATED_JSON, C_TRUNCATED,
    rule: "HT-03",
    code: "explain-truncated-json",
    spec: "RFC 9112 §6.3; RFC 8259 §2",
    summary: "The JSON body ends early or is malformed.",
    title: "The JSON body is truncated or malformed",
    cause: "The body stops in the middle of the document: a wrong Content-Length from a proxy that \
            rewrote the body, a connection reset, a read limit in the client, or a server that \
            writes invalid JSON (unescaped characters, trailing commas).",
    fix: concat!(
        capture_token!(),
        " It compares the bytes received with Content-Length and shows where the JSON breaks."
    ),
);

cause!(
    BOM_PREFIX, C_BOM,
    rule: "HT-04",
    code: "explain-bom-prefix",
    spec: "RFC 8259 §8.1",
    summary: "The body starts with a UTF-8 byte order mark that the JSON parser rejects.",
    title: "The body starts with a UTF-8 byte order mark (BOM)",
    cause: "The server prefixes the JSON with EF BB BF (a .NET or PHP writer with a BOM, a template \
            saved as UTF-8 with BOM). Fetch's `response.json()` strips it, but many parsers reject \
            it: Go prints `invalid character 'ï'`, Python `Unexpected UTF-8 BOM`.",
    fix: concat!(
        "Remove the BOM on the server, or strip it in the client before parsing. ",
        capture_token!(),
        " It reports `body-bom`."
    ),
);

cause!(
    INTERCEPTING_PROXY, C_INTERCEPTING_PROXY,
    rule: "HT-01",
    code: "explain-intercepting-proxy",
    spec: "RFC 9110 §8.3; RFC 9110 §4.3.4",
    summary: "A corporate or TLS-inspecting proxy answered in place of the identity provider.",
    title: "A corporate or TLS-inspecting proxy answered instead of the identity provider",
    cause: "Microsoft's reference for the Windows broker errors names a proxy that generates \
            empty responses or a single string (0xCAA90015), or HTML in the middle of an HTTPS \
            request (0xCAA60007): TLS inspection, a captive portal, a proxy authentication page.",
    fix: "Exempt the identity provider's hosts (login.microsoftonline.com and friends) from TLS \
          inspection and proxy authentication. From the affected machine run \
          `curl -siv -X POST <token-url> > capture.http` (the -v output shows the certificate \
          issuer: a corporate CA means interception) and \
          `gatewise doctor response capture.http --expect token`.",
);

cause!(
    NO_HTTP_RESPONSE, C_NO_RESPONSE,
    rule: "HT-05",
    code: "explain-no-http-response",
    spec: "RFC 9110 §15",
    summary: "No HTTP response reached the client (DNS, TCP, TLS or proxy failure).",
    title: "No HTTP response was received (network, TLS or proxy failure)",
    cause: "Libraries wrap transport errors in a generic message: passport-oauth2's \
            `InternalOAuthError`, x/oauth2's `cannot fetch token` with a network error. Typical \
            origins: DNS failure, connection refused or reset, a certificate the runtime does not \
            trust (self-signed or corporate CA), HTTPS_PROXY not honoured, a timeout.",
    fix: "Read the wrapped error (`err.oauthError`, the cause chain). From the same host and \
          environment run `curl -siv -X POST <token-url> > capture.http`: if curl fails too, fix \
          DNS, trust store or proxy settings; if it gets a response, run \
          `gatewise doctor response capture.http --expect token`.",
);

// ---------------------------------------------------------------------------
// Error versus success, and member presence and types
// ---------------------------------------------------------------------------

cause!(
    OAUTH_ERROR_RESPONSE, C_OAUTH_ERROR,
    rule: "ER-02",
    code: "explain-oauth-error-response",
    spec: "RFC 6749 §5.2",
    summary: "The authorization server refused the request with an OAuth error response.",
    title: "The server refused the token request with an OAuth error",
    cause: "The client reports an error status or an OAuth error body. Its `error` and \
            `error_description` (invalid_client, invalid_grant, invalid_request, \
            unauthorized_client, unsupported_grant_type, invalid_scope) name the reason; some \
            libraries print only the status.",
    fix: concat!(
        "Find `error` and `error_description` in the response (x/oauth2 prints the body after \
         `Response:`) and run `gatewise doctor explain` again with them. ",
        capture_token!(),
        " It classifies the error and lists its causes."
    ),
);

cause!(
    ERROR_WITH_200, C_ERROR_200,
    rule: "TR-11",
    code: "explain-error-with-200",
    spec: "RFC 6749 §5.1, §5.2",
    summary: "An OAuth error came back with HTTP 200, so the client parsed it as a success.",
    title: "An OAuth error came back with HTTP 200 (mis-signalled as success)",
    cause: "GitHub returns errors such as `bad_verification_code` with status 200 (long-standing \
            behaviour it will not change); Slack answers `{\"ok\":false,\"error\":\"invalid_code\"}`. \
            Strict clients then report a missing access_token or token_type instead of the real \
            error, which is in the body.",
    fix: concat!(
        "Read `error` and `error_description` in the body (for GitHub usually an expired or reused \
         code, or a redirect_uri mismatch) and fix that. ",
        capture_token!()
    ),
);

cause!(
    ACCESS_TOKEN_MISSING, C_ACCESS_TOKEN_MISSING,
    rule: "TR-04",
    code: "explain-access-token-missing",
    spec: "RFC 6749 §5.1",
    summary: "The response the client parsed has no access_token string.",
    title: "The response has no access_token",
    cause: "The body is not a standard token response: an error object, a provider envelope \
            (Slack nests the user token under `authed_user.access_token`), JSON from the wrong \
            endpoint, or an error in a non-standard shape such as Strava's \
            `{\"message\":\"Bad Request\",\"errors\":[...]}` when client_id is missing from the body \
            (requests-oauthlib sends it only with `include_client_id=True`).",
    fix: concat!(
        "See what the body really is, then fix the error, use a provider-specific parser for an \
         envelope, or send client_id in the body if the provider wants it. ",
        capture_token!()
    ),
);

cause!(
    TOKEN_TYPE_MISSING, C_TOKEN_TYPE_MISSING,
    rule: "TR-05",
    code: "explain-token-type-missing",
    spec: "RFC 6749 §5.1",
    summary: "The token response omits the REQUIRED token_type member.",
    title: "The token response has no token_type",
    cause: "VK, LinkedIn, Foursquare, Wunderlist, Twitch (kraken) and Slack omit `token_type`, and \
            so do some Azure AD B2C and ADFS setups. Authlib and requests-oauthlib accept that; \
            Spring Security, oauth4webapi, MSAL and the Rust oauth2 crates reject it.",
    fix: concat!(
        "If you run the server, add `\"token_type\":\"Bearer\"`. Otherwise default the type in the \
         client (Spring: a custom access-token response converter; Rust oauth2: a custom \
         `TokenResponse` type) or put gatewise in front to add it. ",
        capture_token!()
    ),
);

cause!(
    EXPIRES_IN_STRING, C_EXPIRES_IN_STRING,
    rule: "TR-06",
    code: "explain-expires-in-string",
    spec: "RFC 6749 §5.1, App. A.14",
    summary: "expires_in is a JSON string instead of a number.",
    title: "expires_in is a JSON string instead of a number",
    cause: "Azure AD v1 `/oauth2/token` (and some Entra paths) send `\"expires_in\":\"3599\"`; \
            PayPal, early Spring Authorization Server and Azure AD B2C did the same. Lenient \
            clients convert it; strict ones (the Rust oauth2 and openidconnect crates, older Dart \
            oauth2) reject it.",
    fix: concat!(
        "Use the Azure AD v2.0 endpoint, fix the server's serializer, or give the client a type \
         that accepts a string (Rust: a custom `TokenResponse` with a string-or-number \
         deserializer). ",
        capture_token!()
    ),
);

cause!(
    SCOPE_NOT_STRING, C_SCOPE_NOT_STRING,
    rule: "TR-07",
    code: "explain-scope-not-string",
    spec: "RFC 6749 §3.3, §5.1",
    summary: "scope in the token response is a JSON array or comma list, not a space-delimited string.",
    title: "scope is a JSON array or a comma list instead of a space-delimited string",
    cause: "Twitch returns `\"scope\":[\"channel:read:polls\", ...]`; GitHub returns \
            `\"scope\":\"repo,gist\"`. RFC 6749 §3.3 makes scope a space-delimited string, and \
            strict clients (Dart oauth2, Elm decoders) reject anything else.",
    fix: "Normalise scope in the client (join an array with spaces) or use a provider-specific \
          client. Confirm with `gatewise doctor response capture.http --expect token \
          --request-scope \"<scopes you sent>\"`.",
);

cause!(
    SCOPE_CHANGED, C_SCOPE_CHANGED,
    rule: "TR-07",
    code: "explain-scope-changed",
    spec: "RFC 6749 §3.3",
    summary: "The granted scope differs from the requested scope and the client raised on it.",
    title: "The server granted a different scope than requested, and the client raised on it",
    cause: "RFC 6749 §3.3 lets the server grant a different scope. Google adds `openid`, Microsoft \
            drops `offline_access` or reorders scopes. oauthlib raises `Scope has changed` unless \
            `OAUTHLIB_RELAX_TOKEN_SCOPE` is set.",
    fix: "Request exactly what the provider grants (for Google include `openid`), or set \
          `OAUTHLIB_RELAX_TOKEN_SCOPE=1` and check the granted scope yourself. \
          `gatewise doctor response capture.http --expect token --request-scope \"<scopes you sent>\"` \
          shows the difference.",
);

// ---------------------------------------------------------------------------
// Requests, client authentication, grants, time, sessions, issuers and keys
// ---------------------------------------------------------------------------

cause!(
    ERROR_CODE_NOT_STRING, C_ERROR_NOT_STRING,
    rule: "ER-02",
    code: "explain-error-code-not-string",
    spec: "RFC 6749 §5.2",
    summary: "The error response's `error` member is not a string (Reddit sends a number).",
    title: "The error response's `error` member is not a string",
    cause: "RFC 6749 §5.2 makes `error` a single ASCII string code. Reddit answers errors with a \
            numeric `error` (`\"error\": 400`), so strict clients (Dart oauth2) fail while parsing \
            the error itself and hide the real reason.",
    fix: concat!(
        "The request was refused: look at the status and the rest of the body for the reason, and \
         handle the provider's error shape in the client. ",
        capture_token!()
    ),
);

cause!(
    ERROR_BODY_NOT_JSON, C_ERROR_BODY_NOT_JSON,
    rule: "ER-04",
    code: "explain-error-body-not-json",
    spec: "RFC 6749 §5.2",
    summary: "The error response is not JSON, so the client could not read the OAuth error.",
    title: "The error response is not JSON, so the client cannot read the reason",
    cause: "The server, or a proxy in front of it, answered an error status with HTML or text: an \
            IIS, ADFS or Azure AD B2C custom error page, a framework's default error page, a \
            proxy's 401/403 page. MSAL reports `non_parsable_oauth_error`, passport-oauth2 \
            `InternalOAuthError`, Apache Oltu `Response body is not application/json encoded`.",
    fix: concat!(
        "The real reason is usually readable in the HTML or text. Fix the error pages so token \
         endpoint errors pass through as JSON. ",
        capture_token!()
    ),
);

cause!(
    WWW_AUTHENTICATE_ON_SUCCESS, C_WWW_AUTH_200,
    rule: "BR-06",
    code: "explain-www-authenticate-on-success",
    spec: "RFC 9110 §11.6.1",
    summary: "A gateway added WWW-Authenticate to a successful token response and a strict client rejected it.",
    title: "A gateway added a WWW-Authenticate header to a successful response",
    cause: "oauth4webapi and openid-client v6 treat any WWW-Authenticate header as a challenge and \
            throw `WWWAuthenticateError`. Kong (`WWW-Authenticate: Key realm=\"kong\"`) and other \
            gateways add the header even to 200 token responses.",
    fix: concat!(
        "Remove the header from the token endpoint's responses in the gateway (Kong: the plugin on \
         that route). ",
        capture_token!(),
        " It reports `token-www-authenticate-on-success`."
    ),
);

cause!(
    BEARER_CHALLENGE, C_BEARER_CHALLENGE,
    rule: "BR-03",
    code: "explain-bearer-challenge",
    spec: "RFC 6750 §3, §3.1",
    summary: "A resource server rejected the access token with a Bearer challenge.",
    title: "The resource server rejected the access token (WWW-Authenticate: Bearer error=...)",
    cause: "The API answered 401 `invalid_token` or 403 `insufficient_scope`: the token expired, \
            has the wrong audience or issuer, was signed with a key the API does not know, lacks \
            a scope, or was sent with the wrong scheme (`bearer` vs `Bearer`, `Bearer` for a DPoP \
            token).",
    fix: "Read `error_description` in the WWW-Authenticate header and decode the token: \
          `gatewise doctor jwt - --jwks jwks.json --issuer <issuer> --audience <api> < token.txt`.",
);

cause!(
    JSON_REQUEST_BODY, C_JSON_REQUEST,
    rule: "CA-04",
    code: "explain-json-request-body",
    spec: "RFC 6749 §4.1.3, App. B",
    summary: "The token request was sent as JSON instead of a form body.",
    title: "The token request was sent as JSON instead of a form body",
    cause: "Token endpoints only read `application/x-www-form-urlencoded`. A request posted as JSON \
            (axios or fetch with an object body, `requests.post(json=...)`) looks empty to the \
            server, which then reports a missing grant_type (Azure AD: AADSTS900144, others: \
            unsupported_grant_type or invalid_request).",
    fix: "Send `Content-Type: application/x-www-form-urlencoded` and a body such as \
          `grant_type=...&code=...` (URLSearchParams, `data=` instead of `json=`). Save the \
          exchange as a HAR and run `gatewise doctor response capture.har --expect token`; it \
          checks the request too.",
);

cause!(
    REQUEST_PARAMETER_MISSING, C_PARAM_MISSING,
    rule: "CA-04",
    code: "explain-request-parameter-missing",
    spec: "RFC 6749 §4.1.3, §6",
    summary: "A parameter the server requires is missing from the token request.",
    title: "A parameter the server requires is missing from the token request",
    cause: "Microsoft Entra v2 refresh requests need `scope` (AADSTS900144 names it); some \
            providers want `client_id` in the body even with Basic authentication; a parameter \
            was dropped by the form encoder or sent in the query string instead of the body.",
    fix: "Add the parameter the error names to the form body. Save the exchange as a HAR and run \
          `gatewise doctor response capture.har --expect token` to see the request as sent.",
);

cause!(
    BASIC_AUTH_ENCODING, C_BASIC_ENCODING,
    rule: "CA-01",
    code: "explain-basic-auth-encoding",
    spec: "RFC 6749 §2.3.1, App. B",
    summary: "client_secret_basic credentials are encoded differently from what the server decodes.",
    title: "The client credentials are Basic-encoded differently from what the server expects",
    cause: "RFC 6749 §2.3.1 says client_id and secret are form-urlencoded before Base64. \
            openid-client and the Rust crates do that; Authlib and requests-oauthlib do not; some \
            servers do not decode. Secrets containing `+ / : = % $` (and, for openid-client, ids \
            with `-`) then fail while others work.",
    fix: "Switch the client to `client_secret_post`, or use a secret of only [A-Za-z0-9-._~]. Save \
          the exchange as a HAR and run `gatewise doctor response capture.har --expect token`: it \
          decodes the Basic header and flags characters that should have been encoded.",
);

cause!(
    CLIENT_CREDENTIALS_WRONG, C_CREDENTIALS_WRONG,
    rule: "ER-02",
    code: "explain-client-credentials-wrong",
    spec: "RFC 6749 §2.3, §5.2",
    summary: "The client_id or client_secret is wrong, expired, or belongs to another tenant or environment.",
    title: "The client_id or client_secret is wrong, expired or from another environment",
    cause: "The secret was rotated or expired (Entra AADSTS7000215, AADSTS7000222), was copied with \
            a trailing newline or space, or belongs to another tenant, realm or environment; or \
            the client id is not registered there (AADSTS700016).",
    fix: "Copy the credentials again from the provider's console and check the variables the app \
          really reads. Test them alone: `curl -si -u \"$ID:$SECRET\" -d grant_type=client_credentials \
          <token-url> > capture.http` and `gatewise doctor response capture.http --expect token`.",
);

cause!(
    AUTH_METHOD_MISMATCH, C_AUTH_METHOD,
    rule: "CA-03",
    code: "explain-auth-method-mismatch",
    spec: "RFC 8414 §2; RFC 6749 §2.3",
    summary: "The client authenticates with a method the server does not accept for this client.",
    title: "The client uses a client authentication method the server does not accept",
    cause: "The client sends Basic where the server expects the secret in the body \
            (client_secret_post) or the reverse; openid-client v6 defaults to client_secret_post; \
            requests-oauthlib no longer sends client_id in the body by default; the client is \
            registered for private_key_jwt or as a public client.",
    fix: "Set the client's method to the one registered for it and listed in \
          `token_endpoint_auth_methods_supported`: `curl -si <issuer>/.well-known/openid-configuration \
          > metadata.http` and `gatewise doctor response metadata.http --expect discovery`. Then \
          save the token exchange as a HAR and run `gatewise doctor response capture.har --expect token`.",
);

cause!(
    CLIENT_SECRET_JWT_EXPIRED, C_SECRET_JWT_EXPIRED,
    rule: "CA-06",
    code: "explain-client-secret-jwt-expired",
    spec: "RFC 7523 §3",
    summary: "A JWT used as client secret or client assertion has expired or is otherwise invalid (Apple).",
    title: "The JWT client secret or client assertion has expired or is invalid",
    cause: "Sign in with Apple uses a self-signed ES256 JWT as client_secret, valid for at most six \
            months; when its `exp` passes Apple answers `invalid_client`. private_key_jwt \
            assertions fail the same way with a wrong `aud`, a past `exp` or a future `iat`.",
    fix: "Generate the client secret JWT on a schedule (well within six months) or per request, \
          with `aud` = the issuer. Inspect it: \
          `gatewise doctor jwt - --audience https://appleid.apple.com < client_secret.txt` shows \
          exp, iat and aud.",
);

cause!(
    GRANT_NOT_ALLOWED, C_GRANT_NOT_ALLOWED,
    rule: "ER-02",
    code: "explain-grant-not-allowed",
    spec: "RFC 6749 §5.2",
    summary: "The client is not allowed to use this grant type, or the server does not support it.",
    title: "The grant type is not enabled for this client or not supported",
    cause: "unauthorized_client / unsupported_grant_type: the client registration does not enable \
            the grant (client_credentials, refresh_token, device code), the client is public where \
            the grant needs a confidential client, or grant_type is misspelled or not read because \
            the body was not form-encoded.",
    fix: "Enable the grant for the client in the provider's console and check \
          `grant_types_supported` (`gatewise doctor response metadata.http --expect discovery`). \
          Save the token exchange as a HAR and run `gatewise doctor response capture.har --expect token`.",
);

cause!(
    CODE_REUSED_OR_EXPIRED, C_CODE_REUSED,
    rule: "AZ-06",
    code: "explain-code-reused-or-expired",
    spec: "RFC 6749 §4.1.2, §10.5",
    summary: "The authorization code was already redeemed or has expired.",
    title: "The authorization code was already used or has expired",
    cause: "Codes are single-use and short-lived (10 minutes at most, often 30-60 s; Entra \
            AADSTS54005 and AADSTS70008, GitHub `bad_verification_code`). Usual origins: the \
            callback runs twice (browser prefetch, a double-mounted React effect, retry \
            middleware), two instances redeem the same code, or the user waited too long.",
    fix: "Redeem each code once, immediately, and make the callback idempotent. Save the callback \
          and token exchange as a HAR and run `gatewise doctor response capture.har --expect token`; \
          error_description usually says which case it is.",
);

cause!(
    REDIRECT_URI_MISMATCH, C_REDIRECT_URI_MISMATCH,
    rule: "CA-05",
    code: "explain-redirect-uri-mismatch",
    spec: "RFC 6749 §4.1.3",
    summary: "The token request's redirect_uri is missing or differs from the authorization request's.",
    title: "The token request's redirect_uri is missing or differs from the authorization request",
    cause: "The token request omits redirect_uri (AADSTS70000 \"'redirect_uri' must be provided\") or \
            sends another value than the authorization request did: http vs https behind a \
            TLS-terminating proxy, a trailing slash, a port, localhost vs 127.0.0.1, different \
            URL-encoding.",
    fix: "Send byte-for-byte the same redirect_uri in both requests (build it once from \
          configuration, not from the incoming request). Save the login as a HAR and run \
          `gatewise doctor response capture.har --expect token` to compare the two requests.",
);

cause!(
    REDIRECT_URI_NOT_REGISTERED, C_REDIRECT_URI_NOT_REGISTERED,
    rule: "RU-02",
    code: "explain-redirect-uri-not-registered",
    spec: "RFC 6749 §3.1.2.3; RFC 9700 §2.1",
    summary: "The redirect_uri does not exactly match a registered redirect URI.",
    title: "The redirect_uri does not exactly match a registered URI",
    cause: "The server compares by exact string: scheme, host, port, path, trailing slash and case \
            all count. Behind a TLS-terminating proxy the app builds an `http://` URI because \
            X-Forwarded-Proto is not passed or not trusted (Keycloak `Invalid parameter: \
            redirect_uri`, Entra AADSTS50011, Google `redirect_uri_mismatch`).",
    fix: "Register the exact URI the app sends, or make the app see the public scheme and host \
          (forwarded headers: Spring `server.forward-headers-strategy`, ASP.NET \
          `UseForwardedHeaders`). Save the login as a HAR and run \
          `gatewise doctor response capture.har` to see the redirect_uri as sent.",
);

cause!(
    PKCE_VERIFIER_MISMATCH, C_PKCE_MISMATCH,
    rule: "PK-04",
    code: "explain-pkce-verifier-mismatch",
    spec: "RFC 7636 §4.5, §4.6",
    summary: "The code_verifier does not match the code_challenge sent with the authorization request.",
    title: "The PKCE code_verifier does not match the code_challenge",
    cause: "The verifier was regenerated or lost between the redirect and the callback (session or \
            cookie lost, several tabs, instances without a shared session), or the challenge was \
            computed wrongly (padded or non-url-safe base64, hashing something else), or the \
            client and server disagree on `plain` vs `S256`.",
    fix: "Store the verifier with the state for that login and compute \
          S256 = BASE64URL-NOPAD(SHA256(verifier)). Save the login as a HAR and run \
          `gatewise doctor response capture.har --expect token`; it checks the verifier.",
);

cause!(
    PKCE_VERIFIER_INVALID, C_PKCE_INVALID,
    rule: "PK-01",
    code: "explain-pkce-verifier-invalid",
    spec: "RFC 7636 §4.1",
    summary: "The code_verifier is not 43-128 characters of [A-Za-z0-9-._~].",
    title: "The PKCE code_verifier has an invalid length or characters",
    cause: "RFC 7636 requires 43-128 characters from [A-Za-z0-9-._~]. Clients that generate a \
            32-character verifier (or use `+`, `/`, `=`) work with lax providers and fail with \
            Keycloak or Authentik (`invalid_code_verifier`).",
    fix: "Generate 32 random bytes and base64url-encode them without padding (43 characters). Save \
          the exchange as a HAR and run `gatewise doctor response capture.har --expect token`; it \
          reports `pkce-verifier-invalid`.",
);

cause!(
    CLOCK_SKEW, C_CLOCK_SKEW,
    rule: "CK-02",
    code: "explain-clock-skew",
    spec: "RFC 7519 §4.1.5, §4.1.6; RFC 9110 §6.6.1",
    summary: "A token's nbf or iat is ahead of the verifier's clock: clocks disagree.",
    title: "The clocks of issuer and verifier disagree (token not yet valid)",
    cause: "The issuer's clock is ahead of the verifier's (a VM, container or laptop without NTP, \
            WSL after sleep), or the issuer rounds `nbf` up, and the verifier allows no leeway \
            (PyJWT, node jsonwebtoken and openid-client v5 default to 0; Keycloak checking client \
            assertions).",
    fix: "Synchronise both clocks (NTP, chrony) and allow a small leeway (30-60 s). Compare the \
          token's times with now: `gatewise doctor jwt - --leeway 0 < token.txt`.",
);

cause!(
    TOKEN_EXPIRED, C_TOKEN_EXPIRED,
    rule: "ID-06",
    code: "explain-token-expired",
    spec: "RFC 7519 §4.1.4; OpenID Connect Core §3.1.3.7 step 9",
    summary: "The token's exp has passed.",
    title: "The token has expired",
    cause: "The token really expired: the client caches it without refreshing (or reads \
            expires_in in the wrong unit), a refresh failed silently, or the verifier's clock is \
            ahead of the issuer's.",
    fix: "Refresh before expiry and surface refresh failures. See how long ago it expired: \
          `gatewise doctor jwt - < token.txt` shows exp and iat in UTC.",
);

cause!(
    REFRESH_TOKEN_REVOKED, C_REFRESH_REVOKED,
    rule: "ER-02",
    code: "explain-refresh-token-revoked",
    spec: "RFC 6749 §5.2, §6",
    summary: "The refresh token was revoked or expired by provider policy.",
    title: "The refresh token was revoked or has expired",
    cause: "Provider policy ended it: Salesforce connected apps set to expire refresh tokens \
            immediately, or more than 5 grants per user and app revoke the oldest; Google apps in \
            testing mode (7 days); Entra inactivity (AADSTS700082); rotation where two processes \
            refreshed concurrently and one used the old token; a password change or revoked consent.",
    fix: "Check the provider's refresh-token policy, store each rotated refresh token atomically \
          with a single refresher, and send the user through login again. Capture the refresh \
          call (`curl -si ... -d grant_type=refresh_token ... > capture.http`) and run \
          `gatewise doctor response capture.http --expect token`.",
);

cause!(
    SCOPE_REJECTED, C_SCOPE_REJECTED,
    rule: "ER-02",
    code: "explain-scope-rejected",
    spec: "RFC 6749 §5.2, §3.3",
    summary: "The requested scope is unknown, not allowed for the client, or malformed.",
    title: "The requested scope is unknown, not allowed for this client, or malformed",
    cause: "A scope the client is not allowed to request, a scope of another API (Entra: scopes of \
            two resources in one request, AADSTS70011, AADSTS28000), a comma-separated list \
            instead of spaces, `offline_access` not enabled, or a typo.",
    fix: "Request only scopes enabled for this client, separated by spaces; compare with \
          `scopes_supported` (`gatewise doctor response metadata.http --expect discovery`) and \
          capture the token call: `gatewise doctor response capture.http --expect token \
          --request-scope \"<scopes you sent>\"`.",
);

cause!(
    ACCESS_DENIED, C_ACCESS_DENIED,
    rule: "AZ-03",
    code: "explain-access-denied",
    spec: "RFC 6749 §4.1.2.1",
    summary: "The user or a policy refused the authorization (access_denied, consent required).",
    title: "The user or a policy denied the authorization",
    cause: "The user cancelled the consent screen, admin consent is required (Entra AADSTS65001), \
            the user is not assigned to the application, or a conditional-access policy blocked \
            the sign-in.",
    fix: "Read error_description in the callback URL; grant consent or assign the user in the \
          provider's console. Save the login as a HAR and run `gatewise doctor response capture.har` \
          to see the authorization response.",
);

cause!(
    DEVICE_FLOW_KEEP_POLLING, C_DEVICE_POLLING,
    rule: "ER-05",
    code: "explain-device-flow-keep-polling",
    spec: "RFC 8628 §3.5",
    summary: "authorization_pending / slow_down is a normal device-flow answer, not a failure.",
    title: "authorization_pending is not an error: the device flow client must keep polling",
    cause: "RFC 8628 sends `authorization_pending` and `slow_down` as HTTP 400 while the user has \
            not finished; a client whose HTTP wrapper raises on every 4xx aborts on the first \
            poll. Some servers also use non-standard codes for pending.",
    fix: "Catch 400 responses, read `error`, keep polling on authorization_pending, add 5 s to the \
          interval on slow_down, and stop on any other code. Capture one poll and run \
          `gatewise doctor response capture.http --expect token`.",
);

cause!(
    DPOP_NONCE_REQUIRED, C_DPOP_NONCE,
    rule: "DP-07",
    code: "explain-dpop-nonce-required",
    spec: "RFC 9449 §8, §9",
    summary: "The server demands a DPoP nonce and the client did not retry with it.",
    title: "The server demands a DPoP nonce and the client did not retry with it",
    cause: "With DPoP the server may answer 400 `use_dpop_nonce` (or 401 with \
            `WWW-Authenticate: DPoP error=\"use_dpop_nonce\"`) and a `DPoP-Nonce` header (Okta and \
            others). The client must put that nonce in a new proof and retry once; many clients \
            surface the error instead.",
    fix: concat!(
        "Upgrade or configure the client to handle the nonce retry (or disable DPoP for this \
         client). ",
        capture_token!(),
        " It reports `error-use-dpop-nonce` and shows the DPoP-Nonce header."
    ),
);

cause!(
    STATE_COOKIE_MISSING, C_STATE_COOKIE,
    rule: "AZ-02",
    code: "explain-state-cookie-missing",
    spec: "RFC 6749 §4.1.2, §10.12",
    summary: "The callback arrived without the state cookie or session set when the login started.",
    title: "The callback arrived without the state cookie set when the login started",
    cause: "The browser did not send the state cookie back: a Secure cookie on plain http (secure \
            cookie settings vs the real scheme), a different host between login and callback (www \
            vs apex, another port, NEXTAUTH_URL or AUTH_URL not the browser's URL), a login \
            finished in another browser or private tab, middleware that drops Set-Cookie.",
    fix: "Make the app's configured base URL exactly the URL in the browser. Record the login in \
          the browser's devtools, save it as a HAR and run `gatewise doctor response login.har`; \
          compare the Set-Cookie on the authorize redirect with the Cookie on the callback.",
);

cause!(
    SESSION_NOT_SHARED, C_SESSION_NOT_SHARED,
    rule: "AZ-02",
    code: "explain-session-not-shared",
    spec: "RFC 6749 §10.12",
    summary: "The callback reached an instance or session that does not hold the saved authorization request.",
    title: "The callback reached a session that does not hold the saved login request",
    cause: "Several app instances without sticky sessions or a shared session store; client and \
            authorization server both on `localhost` (different ports), overwriting each other's \
            session cookie; the session expired during a slow login.",
    fix: "Use sticky sessions or a shared session store (Spring Session with Redis), or a \
          cookie-based authorization-request repository; run the server under another host name \
          than the client (127.0.0.1 vs localhost). Save the login as a HAR and run \
          `gatewise doctor response login.har` to follow the session cookie.",
);

cause!(
    SAMESITE_COOKIE_DROPPED, C_SAMESITE,
    rule: "AZ-07",
    code: "explain-samesite-cookie-dropped",
    spec: "OAuth 2.0 Form Post Response Mode; RFC 6265 §4.1",
    summary: "A cross-site form_post callback lost its correlation/nonce cookie to SameSite rules.",
    title: "The browser dropped the correlation or nonce cookie on a cross-site callback",
    cause: "With `response_mode=form_post` the callback is a cross-site POST: browsers do not send \
            SameSite=Lax or Strict cookies with it, and reject SameSite=None without Secure (plain \
            http sites). ASP.NET Core then reports `Correlation failed`.",
    fix: "Serve the app over https and mark the correlation and nonce cookies `SameSite=None; \
          Secure` (ASP.NET Core: the cookie builders' SameSite and SecurePolicy), or use \
          `response_mode=query`. Save the login as a HAR and run `gatewise doctor response login.har`.",
);

cause!(
    NONCE_MISMATCH, C_NONCE_MISMATCH,
    rule: "ID-08",
    code: "explain-nonce-mismatch",
    spec: "OpenID Connect Core §3.1.3.7 step 11",
    summary: "The ID token's nonce is missing or differs from the one the client stored.",
    title: "The ID token's nonce does not match the one the client stored",
    cause: "The nonce cookie or session entry was lost before the callback (the same origins as a \
            lost state cookie), the login was started twice in parallel tabs, or the provider \
            does not echo the nonce.",
    fix: "Fix cookie persistence for the callback as for state. Check the token: \
          `gatewise doctor jwt - --nonce <nonce sent> < id_token.txt`.",
);

cause!(
    CALLBACK_ISS_UNEXPECTED, C_CALLBACK_ISS,
    rule: "AZ-04",
    code: "explain-callback-iss-unexpected",
    spec: "RFC 9207 §2.4",
    summary: "The authorization response carries an `iss` the client does not expect or cannot check.",
    title: "The callback carries an `iss` parameter the client does not expect",
    cause: "Providers now send the RFC 9207 `iss` parameter in the callback (GitHub since 2026: \
            `https://github.com/login/oauth`). openid-client v5 (NextAuth v4) throws `issuer must \
            be configured` when none is set; Auth.js v5 compares it with its placeholder \
            `https://authjs.dev`. A guessed `https://github.com` is also wrong.",
    fix: "Set the provider's issuer to exactly the `iss` value in the callback URL (GitHub: \
          `issuer: \"https://github.com/login/oauth\"`). Save the login as a HAR and run \
          `gatewise doctor response login.har` to see the callback parameters.",
);

cause!(
    ISSUER_FORM_MISMATCH, C_ISSUER_FORM,
    rule: "ID-02",
    code: "explain-issuer-form-mismatch",
    spec: "OpenID Connect Core §3.1.3.7 step 2",
    summary: "The token's iss differs from the configured issuer only in form (trailing slash, scheme).",
    title: "The token's issuer differs from the configured one only by a trailing slash or scheme",
    cause: "The comparison is exact. Auth0 issuers end with `/` and apps strip it; Google ID \
            tokens may carry `accounts.google.com` without `https://`; a configuration adds or \
            drops a path segment.",
    fix: "Copy the issuer verbatim from the discovery document's `issuer` (Google: accept both \
          forms). Compare: `gatewise doctor jwt - --issuer <configured issuer> < token.txt` shows \
          the token's iss next to the expected one.",
);

cause!(
    ISSUER_HOST_MISMATCH, C_ISSUER_HOST,
    rule: "ID-02",
    code: "explain-issuer-host-mismatch",
    spec: "OpenID Connect Core §3.1.3.7 step 2; RFC 9068 §4",
    summary: "The token was issued under another host or URL than the one the verifier trusts.",
    title: "The token was issued under another host or URL than the verifier expects",
    cause: "Keycloak stamps `iss` from the URL the browser used (`http://localhost:8080/realms/...`) \
            while the API validates against an internal one (`http://keycloak:8080/...`); a custom \
            domain vs the tenant domain (Auth0, Okta); another realm, tenant or environment.",
    fix: "Give the issuer one stable public URL (Keycloak: KC_HOSTNAME or the frontend URL, with a \
          dynamic backchannel) and configure the API with it. Check: \
          `gatewise doctor jwt - --issuer <expected issuer> < token.txt`.",
);

cause!(
    DISCOVERY_ISSUER_MISMATCH, C_DISCOVERY_ISSUER,
    rule: "MD-04",
    code: "explain-discovery-issuer-mismatch",
    spec: "OpenID Connect Discovery §4.3; RFC 8414 §3.3",
    summary: "The discovery document's issuer differs from the issuer URL the client was configured with.",
    title: "The discovery document's issuer differs from the configured issuer URL",
    cause: "The client compares the configured URL with the metadata's `issuer`: a trailing slash, \
            http vs https, a path segment, a proxy rewriting the host. Apple switched its \
            discovery `issuer` to `https://account.apple.com` in June 2025 while ID tokens kept \
            `https://appleid.apple.com`.",
    fix: "Configure the issuer exactly as the metadata's `issuer` (for Apple accept both values). \
          Check: `curl -si <issuer>/.well-known/openid-configuration > metadata.http` and \
          `gatewise doctor response metadata.http --expect discovery --issuer <configured issuer>`.",
);

cause!(
    TEMPLATED_ISSUER, C_TEMPLATED_ISSUER,
    rule: "MD-07",
    code: "explain-templated-issuer",
    spec: "OpenID Connect Discovery §4.3",
    summary: "Microsoft multi-tenant metadata has a templated issuer ({tenantid}) that no token can match.",
    title: "The Microsoft multi-tenant issuer is a template ({tenantid}) no token matches",
    cause: "The `common` and `organizations` endpoints publish \
            `https://login.microsoftonline.com/{tenantid}/v2.0`; tokens carry the real tenant \
            GUID. Microsoft: \"The common endpoint is not OIDC compliant\".",
    fix: "Use the tenant-specific authority, or validate `iss` against the tenant pattern yourself \
          (an IssuerValidator; go-oidc: skip the issuer check and verify it). \
          `gatewise doctor response metadata.http --expect discovery` flags the template.",
);

cause!(
    ENTRA_TOKEN_VERSION, C_TOKEN_VERSION,
    rule: "AT-03",
    code: "explain-entra-token-version",
    spec: "RFC 9068 §4",
    summary: "A Microsoft Entra v1 token was checked against v2 metadata, or the reverse.",
    title: "The Entra token version (v1 vs v2 issuer) differs from the metadata the API loaded",
    cause: "v1 tokens carry `iss` `https://sts.windows.net/<tid>/`, v2 tokens \
            `https://login.microsoftonline.com/<tid>/v2.0`. The version follows the API \
            registration's `accessTokenAcceptedVersion`, not the endpoint the client used.",
    fix: "Set `accessTokenAcceptedVersion: 2` (requestedAccessTokenVersion) in the API's app \
          manifest, or accept both issuers. Check `ver` and `iss`: \
          `gatewise doctor jwt - --issuer <expected issuer> < token.txt`.",
);

cause!(
    SIGNING_KEY_NOT_FOUND, C_KEY_NOT_FOUND,
    rule: "JK-03",
    code: "explain-signing-key-not-found",
    spec: "RFC 7517 §4.5; OpenID Connect Core §10.1.1",
    summary: "The token's kid is not in the JWKS the verifier holds (rotation, stale cache, regenerated key).",
    title: "The token's signing key (kid) is not in the verifier's JWKS",
    cause: "Keys were rotated (Dex about every 6 h, Cognito, Auth0) and the verifier caches the \
            JWKS without refetching on an unknown kid; IdentityServer's developer signing key is \
            regenerated at every restart; the verifier loaded the JWKS once at startup.",
    fix: "Refetch the JWKS once on an unknown kid (and on a TTL); give the server a persistent \
          signing key. Check: `curl -s <jwks_uri> > jwks.json` and \
          `gatewise doctor jwt - --jwks jwks.json < token.txt`.",
);

cause!(
    WRONG_JWKS, C_WRONG_JWKS,
    rule: "JK-03",
    code: "explain-wrong-jwks",
    spec: "RFC 7517 §4.5; RFC 8725 §3.8",
    summary: "The verifier uses the JWKS of another issuer, tenant or environment.",
    title: "The verifier uses the keys of another issuer, tenant or environment",
    cause: "The jwks_uri belongs to another realm, tenant or environment (staging vs production), \
            the token comes from another provider or authorization server, or an ID token is \
            checked where an access token is expected.",
    fix: "Take jwks_uri from the discovery document of the token's own `iss`. \
          `gatewise doctor jwt - < token.txt` shows iss and kid; add `--jwks jwks.json` to verify.",
);

cause!(
    OKTA_ORG_TOKEN, C_OKTA_ORG,
    rule: "JK-03",
    code: "explain-okta-org-token",
    spec: "RFC 7517 §4.5",
    summary: "Okta org authorization server access tokens are not meant to be validated locally.",
    title: "An Okta org authorization server token cannot be validated locally",
    cause: "Access tokens from the org authorization server (`https://<org>.okta.com/oauth2/v1/...`) \
            are for Okta's own APIs and their keys are not published for local validation; only \
            custom authorization servers (`/oauth2/default`, `/oauth2/<id>`) issue tokens your API \
            can verify.",
    fix: "Request tokens from a custom authorization server (`https://<org>.okta.com/oauth2/default`), \
          or introspect org tokens. `gatewise doctor jwt - < token.txt` shows the `iss`: no \
          `/oauth2/<id>` path means the org server.",
);

cause!(
    GRAPH_TOKEN, C_GRAPH_TOKEN,
    rule: "AT-05",
    code: "explain-graph-token",
    spec: "— (Microsoft Graph quirk)",
    summary: "A Microsoft Graph access token is being validated by an API it was not issued for.",
    title: "A Microsoft Graph access token cannot be validated by your API",
    cause: "Tokens for Microsoft Graph carry a `nonce` in the JOSE header and are signed over a \
            transformed value; they are not meant for third-party validation, so signature \
            validation fails (IDX10503, IDX10511).",
    fix: "Request a token for your own API (`api://<app-id>/.default` or its scopes) and validate \
          that. `gatewise doctor jwt - < token.txt` shows `aud` and reports `jwt-header-nonce`.",
);

cause!(
    ALG_NOT_ALLOWED, C_ALG_NOT_ALLOWED,
    rule: "JB-01",
    code: "explain-alg-not-allowed",
    spec: "RFC 8725 §3.1; RFC 7517 §4.4",
    summary: "The token's alg is not in the verifier's allow-list (for example ES384 vs an RS256-only default).",
    title: "The token's signing algorithm is not one the verifier allows",
    cause: "Verifiers allow-list algorithms: Spring's NimbusJwtDecoder accepts RS256 unless \
            `jwsAlgorithm(...)` is set, while Logto signs with ES384; an HS256 token meets an \
            RS256-only verifier; the JWK's `alg` differs from the token's.",
    fix: "Configure the verifier for the issuer's algorithm (`id_token_signing_alg_values_supported`). \
          `gatewise doctor jwt - --jwks jwks.json < token.txt` shows the header alg and the key types.",
);

cause!(
    AUDIENCE_MISMATCH, C_AUDIENCE,
    rule: "ID-03",
    code: "explain-audience-mismatch",
    spec: "OpenID Connect Core §3.1.3.7 step 3; RFC 8725 §3.9",
    summary: "The token's aud is not the audience the verifier expects.",
    title: "The token's audience is not the one the verifier expects",
    cause: "The token was requested for another API or client (a missing `audience` or `resource` \
            parameter, Entra `api://` vs the client id GUID), or the verifier is configured with \
            another identifier.",
    fix: "Request the token for the API that validates it and configure the same identifier on \
          both sides. Check: `gatewise doctor jwt - --audience <expected> < token.txt`.",
);

cause!(
    TOKEN_TYPE_UNKNOWN, C_TOKEN_TYPE_UNKNOWN,
    rule: "TR-05",
    code: "explain-token-type-unknown",
    spec: "RFC 6749 §7.1; RFC 9449 §5",
    summary: "token_type is not one the client supports (DPoP, N_A, mac).",
    title: "token_type is a type the client does not support",
    cause: "A Bearer-only client received `DPoP` (the server binds tokens to a DPoP key), `N_A` \
            (token exchange of a non-access token) or a legacy type such as `mac`.",
    fix: concat!(
        "Enable DPoP in the client or disable it for this client on the server. ",
        capture_token!()
    ),
);

// ---------------------------------------------------------------------------
// The generic answer
// ---------------------------------------------------------------------------

cause!(
    UNRECOGNISED, C_UNRECOGNISED,
    rule: "EX-01",
    code: "explain-unrecognised",
    spec: "RFC 6749 §5.1, §5.2",
    summary: "The message matches no known client-library pattern; the exchange itself must be judged.",
    title: "The message matches no known OAuth client pattern",
    cause: "gatewise knows what Spring Security, oauthlib, Authlib, golang.org/x/oauth2, go-oidc, \
            the Rust oauth2 crates, openid-client, MSAL, Dart oauth2 and others print, and this \
            message matches none of them. The cause has to be read from the HTTP exchange.",
    fix: concat!(
        "Paste the full error including any status and body the library printed, or ",
        capture_token!(),
        " For a JWT rejected by a verifier run `gatewise doctor jwt - --jwks jwks.json < token.txt`."
    ),
);

/// Every check this module can emit.
pub const CHECKS: &[&Check] = &[
    &HTML_INSTEAD_OF_JSON,
    &PROXY_ERROR_PAGE,
    &REDIRECT_TO_LOGIN,
    &WRONG_TOKEN_ENDPOINT,
    &FORM_ENCODED_RESPONSE,
    &CONTENT_TYPE_NOT_JSON,
    &GZIP_NOT_DECODED,
    &EMPTY_BODY,
    &TRUNCATED_JSON,
    &BOM_PREFIX,
    &INTERCEPTING_PROXY,
    &NO_HTTP_RESPONSE,
    &OAUTH_ERROR_RESPONSE,
    &ERROR_WITH_200,
    &ACCESS_TOKEN_MISSING,
    &TOKEN_TYPE_MISSING,
    &EXPIRES_IN_STRING,
    &SCOPE_NOT_STRING,
    &SCOPE_CHANGED,
    &ERROR_CODE_NOT_STRING,
    &ERROR_BODY_NOT_JSON,
    &WWW_AUTHENTICATE_ON_SUCCESS,
    &BEARER_CHALLENGE,
    &JSON_REQUEST_BODY,
    &REQUEST_PARAMETER_MISSING,
    &BASIC_AUTH_ENCODING,
    &CLIENT_CREDENTIALS_WRONG,
    &AUTH_METHOD_MISMATCH,
    &CLIENT_SECRET_JWT_EXPIRED,
    &GRANT_NOT_ALLOWED,
    &CODE_REUSED_OR_EXPIRED,
    &REDIRECT_URI_MISMATCH,
    &REDIRECT_URI_NOT_REGISTERED,
    &PKCE_VERIFIER_MISMATCH,
    &PKCE_VERIFIER_INVALID,
    &CLOCK_SKEW,
    &TOKEN_EXPIRED,
    &REFRESH_TOKEN_REVOKED,
    &SCOPE_REJECTED,
    &ACCESS_DENIED,
    &DEVICE_FLOW_KEEP_POLLING,
    &DPOP_NONCE_REQUIRED,
    &STATE_COOKIE_MISSING,
    &SESSION_NOT_SHARED,
    &SAMESITE_COOKIE_DROPPED,
    &NONCE_MISMATCH,
    &CALLBACK_ISS_UNEXPECTED,
    &ISSUER_FORM_MISMATCH,
    &ISSUER_HOST_MISMATCH,
    &DISCOVERY_ISSUER_MISMATCH,
    &TEMPLATED_ISSUER,
    &ENTRA_TOKEN_VERSION,
    &SIGNING_KEY_NOT_FOUND,
    &WRONG_JWKS,
    &OKTA_ORG_TOKEN,
    &GRAPH_TOKEN,
    &ALG_NOT_ALLOWED,
    &AUDIENCE_MISMATCH,
    &TOKEN_TYPE_UNKNOWN,
    &UNRECOGNISED,
];

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

/// One recognisable message: every fragment must occur (case-insensitive).
struct Pattern {
    library: &'static str,
    all: &'static [&'static str],
    tier: u8,
    causes: &'static [&'static Cause],
}

const fn p(
    library: &'static str,
    all: &'static [&'static str],
    tier: u8,
    causes: &'static [&'static Cause],
) -> Pattern {
    Pattern {
        library,
        all,
        tier,
        causes,
    }
}

const SPRING: &str = "Spring Security";
const OAUTHLIB: &str = "oauthlib / requests-oauthlib";
const AUTHLIB: &str = "Authlib";
const PY_HTTP: &str = "Python requests / httpx";
const PY_JSON: &str = "Python json";
const FLASK_OAUTHLIB: &str = "Flask-OAuthlib";
const XOAUTH2: &str = "golang.org/x/oauth2";
const GO_OIDC: &str = "go-oidc";
const JWT_LIBS: &str = "JWT library (jsonwebtoken, PyJWT, golang-jwt, Nimbus)";
const RUST: &str = "Rust oauth2 / openidconnect crates";
const OPENID_CLIENT: &str = "openid-client / oauth4webapi";
const AUTHJS: &str = "Auth.js / NextAuth";
const PASSPORT: &str = "passport-oauth2";
const JWKS_RSA: &str = "jwks-rsa / okta-jwt-verifier";
const NODE_JSON: &str = "Node.js JSON.parse";
const JSON_PARSER: &str = "JSON parser (Node.js JSON.parse, Go encoding/json)";
const MSAL: &str = "MSAL";
const IDENTITY_MODEL: &str = "Microsoft.IdentityModel / ASP.NET Core";
const NEWTONSOFT: &str = "Newtonsoft.Json (.NET)";
const ENTRA: &str = "Microsoft Entra ID (AADSTS)";
const WAM: &str = "Windows WAM token broker (ADAL)";
const DART: &str = "Dart oauth2";
const LEAGUE: &str = "league/oauth2-client (PHP)";
const SOCIALITE: &str = "Laravel Socialite";
const OLTU: &str = "Apache Oltu";
const AFOAUTH1: &str = "AFOAuth1Client (iOS, OAuth 1.0a)";
const KEYCLOAK: &str = "Keycloak";
const APPLE: &str = "Sign in with Apple";
const SALESFORCE: &str = "Salesforce";
const GOOGLE: &str = "Google";
const GITHUB: &str = "GitHub";
const KONG: &str = "Kong";
const OAUTH_CODE: &str = "OAuth 2.0 error code";
const BODY: &str = "HTTP response excerpt";
const GENERIC: &str = "generic phrase, printed by no known library";
const NETWORK: &str = "network or TLS error";

/// A provider quirk recognised from a host or value in the message.
const PROVIDER: u8 = 0;
/// A precise sub-reason printed by a library.
const EXACT: u8 = 1;
/// A library message with several known causes.
const MESSAGE: u8 = 2;
/// A bare OAuth error code.
const CODE: u8 = 3;
/// A library's catch-all message.
const CATCH_ALL: u8 = 4;
/// The generic "invalid OAuth response" phrase.
const GENERIC_TIER: u8 = 5;

// Cause lists shared by several patterns.
const HTML_PAGE: &[&Cause] = &[&C_HTML, &C_PROXY_ERROR_PAGE, &C_REDIRECT, &C_WRONG_ENDPOINT];
const INVALID_CLIENT: &[&Cause] = &[
    &C_BASIC_ENCODING,
    &C_CREDENTIALS_WRONG,
    &C_AUTH_METHOD,
    &C_SECRET_JWT_EXPIRED,
];
const INVALID_GRANT: &[&Cause] = &[
    &C_CODE_REUSED,
    &C_REDIRECT_URI_MISMATCH,
    &C_PKCE_MISMATCH,
    &C_CLOCK_SKEW,
    &C_REFRESH_REVOKED,
];
const EXPIRED: &[&Cause] = &[&C_TOKEN_EXPIRED, &C_CLOCK_SKEW];
const NOT_YET_VALID: &[&Cause] = &[&C_CLOCK_SKEW];
const STATE_LOST: &[&Cause] = &[&C_STATE_COOKIE, &C_SESSION_NOT_SHARED, &C_SAMESITE];
const KEY_MISSING: &[&Cause] = &[&C_KEY_NOT_FOUND, &C_WRONG_JWKS, &C_OKTA_ORG];
const ISSUER_MISMATCH: &[&Cause] = &[&C_ISSUER_FORM, &C_ISSUER_HOST, &C_DISCOVERY_ISSUER];
const METADATA_ISSUER: &[&Cause] = &[&C_DISCOVERY_ISSUER, &C_TEMPLATED_ISSUER, &C_ISSUER_FORM];
const EMPTY_OR_CUT: &[&Cause] = &[&C_EMPTY, &C_TRUNCATED];
const NOT_JSON: &[&Cause] = &[&C_HTML, &C_FORM, &C_EMPTY, &C_TRUNCATED, &C_BOM, &C_GZIP];
const PROXY_PAGE: &[&Cause] = &[&C_PROXY_ERROR_PAGE, &C_HTML];
const REDIRECTED: &[&Cause] = &[&C_REDIRECT, &C_WRONG_ENDPOINT];
const NOT_FOUND: &[&Cause] = &[&C_WRONG_ENDPOINT, &C_REDIRECT];
const NO_ACCESS_TOKEN: &[&Cause] = &[&C_ERROR_200, &C_ACCESS_TOKEN_MISSING];
const NO_TOKEN_TYPE: &[&Cause] = &[&C_TOKEN_TYPE_MISSING, &C_ERROR_200];

/// Every recognised message. Within a tier, earlier causes rank higher.
const PATTERNS: &[Pattern] = &[
    // --- Provider quirks -------------------------------------------------
    p(
        APPLE,
        &["appleid.apple.com", "invalid_client"],
        PROVIDER,
        &[&C_SECRET_JWT_EXPIRED],
    ),
    p(
        APPLE,
        &["account.apple.com", "appleid.apple.com"],
        PROVIDER,
        &[&C_DISCOVERY_ISSUER],
    ),
    p(
        SALESFORCE,
        &["salesforce", "invalid_grant"],
        PROVIDER,
        &[&C_REFRESH_REVOKED],
    ),
    p(
        SALESFORCE,
        &["expired access/refresh token"],
        PROVIDER,
        &[&C_REFRESH_REVOKED],
    ),
    p(
        GOOGLE,
        &["Token has been expired or revoked"],
        PROVIDER,
        &[&C_REFRESH_REVOKED],
    ),
    p(
        GOOGLE,
        &["\"accounts.google.com\"", "issue"],
        PROVIDER,
        &[&C_ISSUER_FORM],
    ),
    p(ENTRA, &["{tenantid}"], PROVIDER, &[&C_TEMPLATED_ISSUER]),
    p(
        ENTRA,
        &["sts.windows.net", "issuer"],
        PROVIDER,
        &[&C_TOKEN_VERSION],
    ),
    p(
        ENTRA,
        &["graph.microsoft.com", "signature"],
        PROVIDER,
        &[&C_GRAPH_TOKEN],
    ),
    p(
        KEYCLOAK,
        &["/realms/", "issuer"],
        PROVIDER,
        &[&C_ISSUER_HOST],
    ),
    p(
        JWKS_RSA,
        &["okta.com/oauth2/v1", "signing key"],
        PROVIDER,
        &[&C_OKTA_ORG],
    ),
    p(
        GITHUB,
        &["iss=https%3A%2F%2Fgithub.com%2Flogin%2Foauth"],
        PROVIDER,
        &[&C_CALLBACK_ISS],
    ),
    p(
        GITHUB,
        &["bad_verification_code"],
        PROVIDER,
        &[&C_CODE_REUSED, &C_ERROR_200],
    ),
    p(KONG, &["realm=\"kong\""], PROVIDER, &[&C_WWW_AUTH_200]),
    // --- Spring Security -------------------------------------------------
    p(SPRING, &["tokenType cannot be null"], EXACT, NO_TOKEN_TYPE),
    p(
        SPRING,
        &["Missing JSON object member with key \"token_type\""],
        EXACT,
        NO_TOKEN_TYPE,
    ),
    p(
        SPRING,
        &["Missing JSON object member with key \"access_token\""],
        EXACT,
        NO_ACCESS_TOKEN,
    ),
    p(
        SPRING,
        &["Content type 'text/html' not supported"],
        EXACT,
        &[&C_HTML, &C_PROXY_ERROR_PAGE, &C_REDIRECT, &C_CONTENT_TYPE],
    ),
    p(
        SPRING,
        &[
            "Content type 'application/x-www-form-urlencoded",
            "not supported",
        ],
        EXACT,
        &[&C_FORM],
    ),
    p(
        SPRING,
        &["Content type 'text/plain", "not supported"],
        EXACT,
        &[&C_CONTENT_TYPE],
    ),
    p(
        SPRING,
        &["The HTTP Content-Type header must be application/json"],
        EXACT,
        &[&C_FORM, &C_CONTENT_TYPE, &C_HTML],
    ),
    p(
        SPRING,
        &["no suitable HttpMessageConverter found", "text/html"],
        EXACT,
        &[&C_CONTENT_TYPE, &C_HTML],
    ),
    p(
        SPRING,
        &["no suitable HttpMessageConverter found"],
        MESSAGE,
        &[&C_CONTENT_TYPE, &C_FORM, &C_HTML],
    ),
    p(
        SPRING,
        &["authorization_request_not_found"],
        EXACT,
        &[&C_SESSION_NOT_SHARED, &C_STATE_COOKIE, &C_SAMESITE],
    ),
    p(
        SPRING,
        &["Another algorithm expected, or no matching key(s) found"],
        EXACT,
        &[&C_ALG_NOT_ALLOWED, &C_KEY_NOT_FOUND, &C_WRONG_JWKS],
    ),
    p(
        SPRING,
        &["Invalid token issuer"],
        EXACT,
        &[&C_ISSUER_HOST, &C_ISSUER_FORM, &C_TOKEN_VERSION],
    ),
    p(SPRING, &["Jwt expired at"], EXACT, EXPIRED),
    p(
        SPRING,
        &["invalid_token_response"],
        CATCH_ALL,
        &[
            &C_HTML,
            &C_TOKEN_TYPE_MISSING,
            &C_CONTENT_TYPE,
            &C_ERROR_200,
        ],
    ),
    // --- oauthlib / requests-oauthlib, Authlib, Flask-OAuthlib, Python ----
    p(
        OAUTHLIB,
        &["Missing access token parameter"],
        MESSAGE,
        &[
            &C_ACCESS_TOKEN_MISSING,
            &C_PROXY_ERROR_PAGE,
            &C_REDIRECT,
            &C_HTML,
            &C_EMPTY,
            &C_AUTH_METHOD,
        ],
    ),
    p(
        OAUTHLIB,
        &["Scope has changed from"],
        EXACT,
        &[&C_SCOPE_CHANGED],
    ),
    p(OAUTHLIB, &["InvalidGrantError"], CODE, INVALID_GRANT),
    p(OAUTHLIB, &["InvalidClientError"], CODE, INVALID_CLIENT),
    p(OAUTHLIB, &["InvalidScopeError"], CODE, &[&C_SCOPE_REJECTED]),
    p(
        OAUTHLIB,
        &["UnauthorizedClientError"],
        CODE,
        &[&C_GRANT_NOT_ALLOWED, &C_AUTH_METHOD],
    ),
    p(OAUTHLIB, &["MismatchingStateError"], EXACT, STATE_LOST),
    p(OAUTHLIB, &["TokenExpiredError"], EXACT, EXPIRED),
    p(AUTHLIB, &["mismatching_state"], EXACT, STATE_LOST),
    p(
        AUTHLIB,
        &["Token endpoint response is not a JSON object"],
        MESSAGE,
        &[&C_HTML, &C_FORM, &C_EMPTY, &C_TRUNCATED, &C_CONTENT_TYPE],
    ),
    p(
        FLASK_OAUTHLIB,
        &["Invalid response from"],
        CATCH_ALL,
        &[&C_OAUTH_ERROR, &C_HTML],
    ),
    p(PY_HTTP, &["502 Server Error"], EXACT, PROXY_PAGE),
    p(PY_HTTP, &["503 Server Error"], EXACT, PROXY_PAGE),
    p(PY_HTTP, &["504 Server Error"], EXACT, PROXY_PAGE),
    p(PY_HTTP, &["404 Client Error", "/login"], EXACT, REDIRECTED),
    p(PY_HTTP, &["404 Client Error"], EXACT, NOT_FOUND),
    p(PY_HTTP, &["405 Client Error"], EXACT, NOT_FOUND),
    p(PY_HTTP, &["Redirect response '30"], EXACT, REDIRECTED),
    p(PY_JSON, &["Unexpected UTF-8 BOM"], EXACT, &[&C_BOM]),
    p(
        PY_JSON,
        &["Expecting value: line 1 column 1 (char 0)"],
        MESSAGE,
        &[&C_EMPTY, &C_HTML, &C_FORM],
    ),
    p(
        PY_JSON,
        &["Unterminated string starting at"],
        EXACT,
        &[&C_TRUNCATED],
    ),
    // --- golang.org/x/oauth2, go-oidc, Go JSON ---------------------------
    p(
        XOAUTH2,
        &["invalid character '<' looking for beginning of value"],
        EXACT,
        HTML_PAGE,
    ),
    p(
        XOAUTH2,
        &["invalid character 'a' looking for beginning of value"],
        EXACT,
        &[&C_FORM],
    ),
    p(
        XOAUTH2,
        &["invalid character 'ï' looking for beginning of value"],
        EXACT,
        &[&C_BOM],
    ),
    p(
        XOAUTH2,
        &["invalid character '\\x1f' looking for beginning of value"],
        EXACT,
        &[&C_GZIP],
    ),
    p(
        XOAUTH2,
        &["server response missing access_token"],
        EXACT,
        NO_ACCESS_TOKEN,
    ),
    p(
        XOAUTH2,
        &["cannot parse json"],
        MESSAGE,
        &[&C_HTML, &C_TRUNCATED, &C_EMPTY, &C_BOM],
    ),
    p(
        XOAUTH2,
        &["cannot fetch token"],
        CATCH_ALL,
        &[&C_OAUTH_ERROR, &C_PROXY_ERROR_PAGE, &C_WRONG_ENDPOINT],
    ),
    p(
        GO_OIDC,
        &["issuer did not match the issuer returned by provider"],
        EXACT,
        METADATA_ISSUER,
    ),
    p(
        GO_OIDC,
        &["id token issued by a different provider"],
        EXACT,
        &[&C_ISSUER_FORM, &C_ISSUER_HOST, &C_TOKEN_VERSION],
    ),
    p(GO_OIDC, &["oidc: expected audience"], EXACT, &[&C_AUDIENCE]),
    p(
        GO_OIDC,
        &["id token signed with unsupported algorithm"],
        EXACT,
        &[&C_ALG_NOT_ALLOWED],
    ),
    p(
        GO_OIDC,
        &["failed to verify signature"],
        MESSAGE,
        &[&C_KEY_NOT_FOUND, &C_WRONG_JWKS, &C_ALG_NOT_ALLOWED],
    ),
    // --- JWT libraries (exp, nbf, iat, aud) --------------------------------
    p(JWT_LIBS, &["jwt expired"], EXACT, EXPIRED),
    p(JWT_LIBS, &["ExpiredSignature"], EXACT, EXPIRED),
    p(JWT_LIBS, &["token is expired"], EXACT, EXPIRED),
    p(JWT_LIBS, &["Signature has expired"], EXACT, EXPIRED),
    p(JWT_LIBS, &["Expired JWT"], EXACT, EXPIRED),
    p(JWT_LIBS, &["jwt not active"], EXACT, NOT_YET_VALID),
    p(JWT_LIBS, &["ImmatureSignature"], EXACT, NOT_YET_VALID),
    p(JWT_LIBS, &["token is not valid yet"], EXACT, NOT_YET_VALID),
    p(
        JWT_LIBS,
        &["token used before issued"],
        EXACT,
        NOT_YET_VALID,
    ),
    p(
        JWT_LIBS,
        &["The token is not yet valid"],
        EXACT,
        NOT_YET_VALID,
    ),
    p(JWT_LIBS, &["is issued in the future"], EXACT, NOT_YET_VALID),
    p(JWT_LIBS, &["jwt audience invalid"], EXACT, &[&C_AUDIENCE]),
    p(JWT_LIBS, &["InvalidAudience"], EXACT, &[&C_AUDIENCE]),
    p(JWT_LIBS, &["jwt issuer invalid"], EXACT, ISSUER_MISMATCH),
    // --- Rust oauth2 / openidconnect -------------------------------------
    p(RUST, &["missing field `token_type`"], EXACT, NO_TOKEN_TYPE),
    p(RUST, &["missing field 'token_type'"], EXACT, NO_TOKEN_TYPE),
    p(
        RUST,
        &["missing field `access_token`"],
        EXACT,
        NO_ACCESS_TOKEN,
    ),
    p(
        RUST,
        &["missing field 'access_token'"],
        EXACT,
        NO_ACCESS_TOKEN,
    ),
    p(
        RUST,
        &["invalid type: string \"", "expected u64"],
        EXACT,
        &[&C_EXPIRES_IN_STRING],
    ),
    p(
        RUST,
        &["invalid type: sequence", "scope"],
        EXACT,
        &[&C_SCOPE_NOT_STRING],
    ),
    p(
        RUST,
        &["expected value at line 1 column 1"],
        MESSAGE,
        &[&C_HTML, &C_PROXY_ERROR_PAGE, &C_REDIRECT, &C_BOM, &C_GZIP],
    ),
    p(
        RUST,
        &["EOF while parsing", "line 1 column 0"],
        EXACT,
        &[&C_EMPTY],
    ),
    p(
        RUST,
        &["EOF while parsing"],
        MESSAGE,
        &[&C_TRUNCATED, &C_EMPTY],
    ),
    p(
        RUST,
        &["unexpected response Content-Type", "x-www-form-urlencoded"],
        EXACT,
        &[&C_FORM],
    ),
    p(
        RUST,
        &["unexpected response Content-Type", "text/html"],
        EXACT,
        &[&C_HTML, &C_WRONG_ENDPOINT, &C_CONTENT_TYPE],
    ),
    p(
        RUST,
        &["unexpected response Content-Type"],
        MESSAGE,
        &[&C_CONTENT_TYPE, &C_FORM, &C_HTML],
    ),
    p(
        RUST,
        &["server returned empty response body"],
        EXACT,
        &[&C_EMPTY, &C_INTERCEPTING_PROXY],
    ),
    p(
        RUST,
        &["RequestTokenError::Request"],
        MESSAGE,
        &[&C_NO_RESPONSE],
    ),
    p(
        RUST,
        &["RequestTokenError::ServerResponse"],
        CATCH_ALL,
        &[&C_OAUTH_ERROR],
    ),
    p(
        RUST,
        &["Failed to parse server response"],
        CATCH_ALL,
        &[
            &C_TOKEN_TYPE_MISSING,
            &C_ERROR_200,
            &C_EXPIRES_IN_STRING,
            &C_HTML,
        ],
    ),
    // --- openid-client / oauth4webapi, Auth.js, passport, jwks-rsa -------
    p(
        OPENID_CLIENT,
        &["OAUTH_INVALID_RESPONSE", "\"token_type\""],
        EXACT,
        NO_TOKEN_TYPE,
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_INVALID_RESPONSE", "\"access_token\""],
        EXACT,
        NO_ACCESS_TOKEN,
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_INVALID_RESPONSE", "\"expires_in\""],
        EXACT,
        &[&C_EXPIRES_IN_STRING],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_INVALID_RESPONSE", "\"scope\""],
        EXACT,
        &[&C_SCOPE_NOT_STRING],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_INVALID_RESPONSE"],
        MESSAGE,
        &[&C_ERROR_200, &C_ACCESS_TOKEN_MISSING, &C_TOKEN_TYPE_MISSING],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_IS_NOT_JSON", "x-www-form-urlencoded"],
        EXACT,
        &[&C_FORM],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_IS_NOT_JSON", "text/html"],
        EXACT,
        &[&C_HTML, &C_WRONG_ENDPOINT, &C_CONTENT_TYPE],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_IS_NOT_JSON"],
        MESSAGE,
        &[&C_CONTENT_TYPE, &C_FORM, &C_HTML],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_PARSE_ERROR"],
        MESSAGE,
        &[&C_TRUNCATED, &C_EMPTY, &C_BOM, &C_GZIP],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_IS_NOT_CONFORM", "Response 30"],
        EXACT,
        REDIRECTED,
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_IS_NOT_CONFORM", "Response 404"],
        EXACT,
        NOT_FOUND,
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_IS_NOT_CONFORM", "Response 405"],
        EXACT,
        NOT_FOUND,
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_IS_NOT_CONFORM"],
        MESSAGE,
        &[&C_PROXY_ERROR_PAGE, &C_REDIRECT, &C_WRONG_ENDPOINT, &C_HTML],
    ),
    p(
        OPENID_CLIENT,
        &["OAUTH_RESPONSE_BODY_ERROR"],
        CATCH_ALL,
        &[&C_OAUTH_ERROR],
    ),
    p(
        OPENID_CLIENT,
        &["WWWAuthenticateError"],
        MESSAGE,
        &[&C_WWW_AUTH_200, &C_BEARER_CHALLENGE],
    ),
    p(
        OPENID_CLIENT,
        &["unexpected iss value"],
        EXACT,
        ISSUER_MISMATCH,
    ),
    p(
        OPENID_CLIENT,
        &["\"iss\" (issuer) claim value"],
        EXACT,
        ISSUER_MISMATCH,
    ),
    p(OPENID_CLIENT, &["JWT not active yet"], EXACT, NOT_YET_VALID),
    p(
        OPENID_CLIENT,
        &["issued in the future"],
        EXACT,
        NOT_YET_VALID,
    ),
    p(
        OPENID_CLIENT,
        &["\"nbf\" (not before) claim value"],
        EXACT,
        NOT_YET_VALID,
    ),
    p(
        OPENID_CLIENT,
        &["\"iat\" (issued at) claim value"],
        EXACT,
        NOT_YET_VALID,
    ),
    p(
        OPENID_CLIENT,
        &["\"exp\" (expiration time) claim value"],
        EXACT,
        EXPIRED,
    ),
    p(
        OPENID_CLIENT,
        &["\"aud\" (audience) claim value"],
        EXACT,
        &[&C_AUDIENCE],
    ),
    p(
        OPENID_CLIENT,
        &["unexpected \"iss\" (issuer) response parameter value"],
        EXACT,
        &[&C_CALLBACK_ISS],
    ),
    p(
        OPENID_CLIENT,
        &["\"response\" body \"issuer\" does not match \"expectedIssuer\""],
        EXACT,
        METADATA_ISSUER,
    ),
    p(
        OPENID_CLIENT,
        &["checks.state argument is missing"],
        EXACT,
        STATE_LOST,
    ),
    p(
        OPENID_CLIENT,
        &["state mismatch"],
        EXACT,
        &[&C_STATE_COOKIE, &C_SESSION_NOT_SHARED],
    ),
    p(
        OPENID_CLIENT,
        &["nonce mismatch"],
        EXACT,
        &[&C_NONCE_MISMATCH, &C_SAMESITE],
    ),
    p(
        OPENID_CLIENT,
        &["Must specify either client_secret or code_verifier"],
        EXACT,
        &[&C_AUTH_METHOD],
    ),
    p(
        OPENID_CLIENT,
        &["expected 200 OK, got:"],
        CATCH_ALL,
        &[&C_OAUTH_ERROR, &C_AUTH_METHOD],
    ),
    p(
        AUTHJS,
        &["issuer must be configured"],
        EXACT,
        &[&C_CALLBACK_ISS],
    ),
    p(AUTHJS, &["State cookie was missing"], EXACT, STATE_LOST),
    p(AUTHJS, &["InvalidCheck"], MESSAGE, STATE_LOST),
    p(
        AUTHJS,
        &["OAUTH_CALLBACK_ERROR"],
        CATCH_ALL,
        &[&C_CALLBACK_ISS, &C_STATE_COOKIE, &C_OAUTH_ERROR],
    ),
    p(
        AUTHJS,
        &["CallbackRouteError"],
        CATCH_ALL,
        &[&C_CALLBACK_ISS, &C_STATE_COOKIE, &C_OAUTH_ERROR],
    ),
    p(
        PASSPORT,
        &["Failed to obtain access token"],
        MESSAGE,
        &[&C_NO_RESPONSE, &C_ERROR_BODY_NOT_JSON, &C_HTML],
    ),
    p(
        PASSPORT,
        &["InternalOAuthError"],
        CATCH_ALL,
        &[&C_NO_RESPONSE, &C_ERROR_BODY_NOT_JSON],
    ),
    p(
        JWKS_RSA,
        &["Unable to find a signing key"],
        MESSAGE,
        KEY_MISSING,
    ),
    p(JWKS_RSA, &["SigningKeyNotFoundError"], MESSAGE, KEY_MISSING),
    p(
        JWKS_RSA,
        &["Unable to find key with kid"],
        MESSAGE,
        &[&C_KEY_NOT_FOUND, &C_WRONG_JWKS],
    ),
    p(
        JWKS_RSA,
        &["Failed to get signing key"],
        MESSAGE,
        &[&C_KEY_NOT_FOUND, &C_WRONG_JWKS],
    ),
    // --- Node.js JSON.parse ----------------------------------------------
    p(NODE_JSON, &["Unexpected token '<'"], EXACT, HTML_PAGE),
    p(NODE_JSON, &["Unexpected token < in JSON"], EXACT, HTML_PAGE),
    p(
        NODE_JSON,
        &["Unexpected token a in JSON"],
        EXACT,
        &[&C_FORM],
    ),
    p(
        NODE_JSON,
        &["Unexpected token 'a', \"access_tok"],
        EXACT,
        &[&C_FORM],
    ),
    p(
        NODE_JSON,
        &["\"access_tok\"... is not valid JSON"],
        EXACT,
        &[&C_FORM],
    ),
    p(
        NODE_JSON,
        &["Unexpected token '\\u001f'"],
        EXACT,
        &[&C_GZIP],
    ),
    p(NODE_JSON, &["Unexpected token '\u{1f}'"], EXACT, &[&C_GZIP]),
    p(
        NODE_JSON,
        &["Unexpected token \u{1f} in JSON"],
        EXACT,
        &[&C_GZIP],
    ),
    p(
        NODE_JSON,
        &["Unexpected token '\u{feff}'"],
        EXACT,
        &[&C_BOM],
    ),
    p(
        NODE_JSON,
        &["Unexpected token \u{feff} in JSON"],
        EXACT,
        &[&C_BOM],
    ),
    p(
        JSON_PARSER,
        &["Unexpected end of JSON input"],
        MESSAGE,
        EMPTY_OR_CUT,
    ),
    p(
        NODE_JSON,
        &["Unterminated string in JSON"],
        EXACT,
        &[&C_TRUNCATED],
    ),
    p(NODE_JSON, &["is not valid JSON"], CATCH_ALL, NOT_JSON),
    // --- MSAL, Microsoft.IdentityModel, Entra, Windows broker --------------
    p(
        MSAL,
        &["non_parsable_oauth_error"],
        EXACT,
        &[
            &C_ERROR_BODY_NOT_JSON,
            &C_PROXY_ERROR_PAGE,
            &C_INTERCEPTING_PROXY,
        ],
    ),
    p(MSAL, &["AccessTokenTypeMissing"], EXACT, NO_TOKEN_TYPE),
    p(
        MSAL,
        &["does not contain the token_type parameter"],
        EXACT,
        NO_TOKEN_TYPE,
    ),
    p(
        MSAL,
        &["failed_to_parse_response"],
        MESSAGE,
        &[&C_HTML, &C_INTERCEPTING_PROXY, &C_GZIP, &C_TRUNCATED],
    ),
    p(
        ENTRA,
        &["AADSTS900144", "'scope'"],
        EXACT,
        &[&C_PARAM_MISSING],
    ),
    p(
        ENTRA,
        &["AADSTS900144"],
        MESSAGE,
        &[&C_JSON_REQUEST, &C_PARAM_MISSING],
    ),
    p(
        ENTRA,
        &["The request body must contain the following parameter"],
        MESSAGE,
        &[&C_JSON_REQUEST, &C_PARAM_MISSING],
    ),
    p(
        ENTRA,
        &["AADSTS70000", "redirect_uri"],
        EXACT,
        &[&C_REDIRECT_URI_MISMATCH],
    ),
    p(
        ENTRA,
        &["AADSTS70000"],
        MESSAGE,
        &[&C_CODE_REUSED, &C_REDIRECT_URI_MISMATCH, &C_SCOPE_REJECTED],
    ),
    p(
        ENTRA,
        &["AADSTS70002"],
        MESSAGE,
        &[
            &C_CREDENTIALS_WRONG,
            &C_BASIC_ENCODING,
            &C_REDIRECT_URI_MISMATCH,
        ],
    ),
    p(
        ENTRA,
        &["AADSTS7000215"],
        EXACT,
        &[&C_CREDENTIALS_WRONG, &C_BASIC_ENCODING],
    ),
    p(ENTRA, &["AADSTS7000222"], EXACT, &[&C_CREDENTIALS_WRONG]),
    p(ENTRA, &["AADSTS700016"], EXACT, &[&C_CREDENTIALS_WRONG]),
    p(ENTRA, &["AADSTS54005"], EXACT, &[&C_CODE_REUSED]),
    p(
        ENTRA,
        &["AADSTS70008"],
        EXACT,
        &[&C_CODE_REUSED, &C_REFRESH_REVOKED],
    ),
    p(ENTRA, &["AADSTS700082"], EXACT, &[&C_REFRESH_REVOKED]),
    p(
        ENTRA,
        &["AADSTS50011"],
        EXACT,
        &[&C_REDIRECT_URI_NOT_REGISTERED],
    ),
    p(
        ENTRA,
        &["AADSTS501481"],
        EXACT,
        &[&C_PKCE_MISMATCH, &C_PKCE_INVALID],
    ),
    p(ENTRA, &["AADSTS70011"], EXACT, &[&C_SCOPE_REJECTED]),
    p(ENTRA, &["AADSTS28000"], EXACT, &[&C_SCOPE_REJECTED]),
    p(ENTRA, &["AADSTS65001"], EXACT, &[&C_ACCESS_DENIED]),
    p(
        IDENTITY_MODEL,
        &["IDX10205"],
        MESSAGE,
        &[&C_TOKEN_VERSION, &C_ISSUER_HOST, &C_TEMPLATED_ISSUER],
    ),
    p(
        IDENTITY_MODEL,
        &["The issuer '", "' is invalid"],
        EXACT,
        &[&C_ISSUER_HOST, &C_ISSUER_FORM],
    ),
    p(
        IDENTITY_MODEL,
        &["IDX10501"],
        MESSAGE,
        &[&C_KEY_NOT_FOUND, &C_WRONG_JWKS],
    ),
    p(
        IDENTITY_MODEL,
        &["The signature key was not found"],
        EXACT,
        &[&C_KEY_NOT_FOUND, &C_WRONG_JWKS],
    ),
    p(
        IDENTITY_MODEL,
        &["IDX10503"],
        MESSAGE,
        &[&C_GRAPH_TOKEN, &C_WRONG_JWKS, &C_KEY_NOT_FOUND],
    ),
    p(
        IDENTITY_MODEL,
        &["IDX10511"],
        MESSAGE,
        &[&C_GRAPH_TOKEN, &C_WRONG_JWKS, &C_KEY_NOT_FOUND],
    ),
    p(IDENTITY_MODEL, &["IDX10223"], EXACT, EXPIRED),
    p(IDENTITY_MODEL, &["IDX10222"], EXACT, NOT_YET_VALID),
    p(IDENTITY_MODEL, &["IDX10214"], EXACT, &[&C_AUDIENCE]),
    p(
        IDENTITY_MODEL,
        &["IDX21323"],
        EXACT,
        &[&C_NONCE_MISMATCH, &C_SAMESITE, &C_STATE_COOKIE],
    ),
    p(
        IDENTITY_MODEL,
        &["Correlation failed"],
        EXACT,
        &[&C_SAMESITE, &C_STATE_COOKIE, &C_SESSION_NOT_SHARED],
    ),
    p(
        IDENTITY_MODEL,
        &["Issuer name does not match authority"],
        EXACT,
        METADATA_ISSUER,
    ),
    p(
        NEWTONSOFT,
        &["Unexpected character encountered while parsing value: <"],
        EXACT,
        HTML_PAGE,
    ),
    p(
        NEWTONSOFT,
        &["Unexpected character encountered while parsing value"],
        MESSAGE,
        &[&C_FORM, &C_HTML, &C_BOM],
    ),
    p(
        WAM,
        &["Server returned invalid OAuth response"],
        EXACT,
        &[&C_INTERCEPTING_PROXY, &C_EMPTY],
    ),
    p(
        WAM,
        &["0xCAA90015"],
        EXACT,
        &[&C_INTERCEPTING_PROXY, &C_EMPTY],
    ),
    p(
        WAM,
        &["ERROR_ADAL_OAUTH_RESPONSE_INVALID"],
        EXACT,
        &[&C_INTERCEPTING_PROXY, &C_EMPTY],
    ),
    p(
        WAM,
        &["0xCAA60007"],
        EXACT,
        &[&C_INTERCEPTING_PROXY, &C_HTML],
    ),
    p(
        WAM,
        &["ERROR_ADAL_JSON_MALFORMED"],
        EXACT,
        &[&C_INTERCEPTING_PROXY, &C_HTML],
    ),
    // --- Dart oauth2 ------------------------------------------------------
    p(
        DART,
        &["Invalid OAuth response for", "x-www-form-urlencoded"],
        EXACT,
        &[&C_FORM],
    ),
    p(
        DART,
        &["Invalid OAuth response for", "content-type was \"text/html"],
        EXACT,
        &[&C_HTML, &C_CONTENT_TYPE],
    ),
    p(
        DART,
        &["Invalid OAuth response for", "content-type was"],
        MESSAGE,
        &[&C_CONTENT_TYPE, &C_FORM, &C_HTML],
    ),
    p(
        DART,
        &["Invalid OAuth response for", "was not an int"],
        EXACT,
        &[&C_EXPIRES_IN_STRING],
    ),
    p(
        DART,
        &["Invalid OAuth response for", "\"scope\" was not a string"],
        EXACT,
        &[&C_SCOPE_NOT_STRING],
    ),
    p(
        DART,
        &["required parameter \"error\" was not a string"],
        EXACT,
        &[&C_ERROR_NOT_STRING],
    ),
    p(
        DART,
        &["did not contain required parameter \"token_type\""],
        EXACT,
        NO_TOKEN_TYPE,
    ),
    p(
        DART,
        &["did not contain required parameter \"access_token\""],
        EXACT,
        NO_ACCESS_TOKEN,
    ),
    p(
        DART,
        &["required parameter \"access_token\" was not a string"],
        EXACT,
        &[&C_ACCESS_TOKEN_MISSING],
    ),
    p(
        DART,
        &["unknown token type"],
        EXACT,
        &[&C_TOKEN_TYPE_UNKNOWN],
    ),
    p(
        DART,
        &["OAuth request for", "failed with status"],
        MESSAGE,
        &[&C_PROXY_ERROR_PAGE, &C_WRONG_ENDPOINT, &C_OAUTH_ERROR],
    ),
    p(
        DART,
        &["Invalid OAuth response for"],
        CATCH_ALL,
        &[
            &C_FORM,
            &C_CONTENT_TYPE,
            &C_EXPIRES_IN_STRING,
            &C_SCOPE_NOT_STRING,
            &C_TOKEN_TYPE_MISSING,
        ],
    ),
    // --- PHP, iOS, Keycloak and other server messages ----------------------
    p(
        LEAGUE,
        &["Invalid response received from Authorization Server. Expected JSON."],
        EXACT,
        &[&C_WRONG_ENDPOINT, &C_HTML, &C_ERROR_BODY_NOT_JSON, &C_FORM],
    ),
    p(
        SOCIALITE,
        &["InvalidStateException"],
        EXACT,
        &[&C_STATE_COOKIE, &C_SESSION_NOT_SHARED],
    ),
    p(
        SOCIALITE,
        &["An OAuth response was received that wasn't expected"],
        EXACT,
        &[&C_STATE_COOKIE, &C_SESSION_NOT_SHARED],
    ),
    p(
        OLTU,
        &["Response body is not application/json encoded"],
        EXACT,
        &[&C_ERROR_BODY_NOT_JSON, &C_CONTENT_TYPE],
    ),
    p(
        AFOAUTH1,
        &["Invalid OAuth response received from server"],
        MESSAGE,
        &[&C_OAUTH_ERROR, &C_HTML, &C_EMPTY],
    ),
    p(
        KEYCLOAK,
        &["invalid_code_verifier"],
        EXACT,
        &[&C_PKCE_INVALID, &C_PKCE_MISMATCH],
    ),
    p(
        KEYCLOAK,
        &["Invalid code verifier"],
        EXACT,
        &[&C_PKCE_INVALID, &C_PKCE_MISMATCH],
    ),
    p(
        KEYCLOAK,
        &["PKCE verification failed"],
        MESSAGE,
        &[&C_PKCE_MISMATCH, &C_PKCE_INVALID],
    ),
    p(
        KEYCLOAK,
        &["code_verifier does not match"],
        EXACT,
        &[&C_PKCE_MISMATCH],
    ),
    p(
        KEYCLOAK,
        &["Invalid parameter: redirect_uri"],
        EXACT,
        &[&C_REDIRECT_URI_NOT_REGISTERED],
    ),
    p(
        KEYCLOAK,
        &["Incorrect redirect_uri"],
        EXACT,
        &[&C_REDIRECT_URI_MISMATCH],
    ),
    p(KEYCLOAK, &["Code not valid"], EXACT, &[&C_CODE_REUSED]),
    p(
        KEYCLOAK,
        &["Token is not active"],
        EXACT,
        &[&C_CLOCK_SKEW, &C_REFRESH_REVOKED],
    ),
    p(
        KEYCLOAK,
        &["Session not active"],
        EXACT,
        &[&C_REFRESH_REVOKED],
    ),
    // --- Bare OAuth error codes and descriptions ---------------------------
    p(OAUTH_CODE, &["use_dpop_nonce"], EXACT, &[&C_DPOP_NONCE]),
    p(OAUTH_CODE, &["UseDPoPNonce"], EXACT, &[&C_DPOP_NONCE]),
    p(
        OAUTH_CODE,
        &["authorization_pending"],
        EXACT,
        &[&C_DEVICE_POLLING],
    ),
    p(OAUTH_CODE, &["slow_down"], EXACT, &[&C_DEVICE_POLLING]),
    p(
        OAUTH_CODE,
        &["redirect_uri_mismatch"],
        EXACT,
        &[&C_REDIRECT_URI_NOT_REGISTERED, &C_REDIRECT_URI_MISMATCH],
    ),
    p(
        OAUTH_CODE,
        &["invalid_redirect_uri"],
        EXACT,
        &[&C_REDIRECT_URI_NOT_REGISTERED],
    ),
    p(OAUTH_CODE, &["already been used"], EXACT, &[&C_CODE_REUSED]),
    p(OAUTH_CODE, &["already redeemed"], EXACT, &[&C_CODE_REUSED]),
    p(OAUTH_CODE, &["code has expired"], EXACT, &[&C_CODE_REUSED]),
    p(
        OAUTH_CODE,
        &["refresh token", "invalid_grant"],
        MESSAGE,
        &[&C_REFRESH_REVOKED],
    ),
    p(
        OAUTH_CODE,
        &["refresh_token", "invalid_grant"],
        MESSAGE,
        &[&C_REFRESH_REVOKED],
    ),
    p(
        OAUTH_CODE,
        &["code_verifier", "invalid_grant"],
        MESSAGE,
        &[&C_PKCE_MISMATCH, &C_PKCE_INVALID],
    ),
    p(
        OAUTH_CODE,
        &["redirect_uri", "invalid_grant"],
        MESSAGE,
        &[&C_REDIRECT_URI_MISMATCH],
    ),
    p(OAUTH_CODE, &["invalid_client"], CODE, INVALID_CLIENT),
    p(
        OAUTH_CODE,
        &["client authentication failed"],
        CODE,
        INVALID_CLIENT,
    ),
    p(OAUTH_CODE, &["invalid_grant"], CODE, INVALID_GRANT),
    p(OAUTH_CODE, &["invalid_scope"], CODE, &[&C_SCOPE_REJECTED]),
    p(
        OAUTH_CODE,
        &["invalid_request"],
        CODE,
        &[
            &C_PARAM_MISSING,
            &C_JSON_REQUEST,
            &C_REDIRECT_URI_NOT_REGISTERED,
        ],
    ),
    p(
        OAUTH_CODE,
        &["unauthorized_client"],
        CODE,
        &[&C_GRANT_NOT_ALLOWED, &C_AUTH_METHOD],
    ),
    p(
        OAUTH_CODE,
        &["unsupported_grant_type"],
        CODE,
        &[&C_GRANT_NOT_ALLOWED, &C_JSON_REQUEST],
    ),
    p(OAUTH_CODE, &["access_denied"], CODE, &[&C_ACCESS_DENIED]),
    p(OAUTH_CODE, &["invalid_dpop_proof"], CODE, &[&C_DPOP_NONCE]),
    p(
        OAUTH_CODE,
        &["invalid_token"],
        CODE,
        &[
            &C_BEARER_CHALLENGE,
            &C_TOKEN_EXPIRED,
            &C_AUDIENCE,
            &C_KEY_NOT_FOUND,
        ],
    ),
    p(
        OAUTH_CODE,
        &["insufficient_scope"],
        CODE,
        &[&C_BEARER_CHALLENGE, &C_SCOPE_REJECTED],
    ),
    // --- Transport failures: no HTTP response at all -----------------------
    p(NETWORK, &["no such host"], EXACT, &[&C_NO_RESPONSE]),
    p(NETWORK, &["ENOTFOUND"], EXACT, &[&C_NO_RESPONSE]),
    p(NETWORK, &["connection refused"], EXACT, &[&C_NO_RESPONSE]),
    p(NETWORK, &["ECONNREFUSED"], EXACT, &[&C_NO_RESPONSE]),
    p(
        NETWORK,
        &["ECONNRESET"],
        EXACT,
        &[&C_NO_RESPONSE, &C_INTERCEPTING_PROXY],
    ),
    p(NETWORK, &["ETIMEDOUT"], EXACT, &[&C_NO_RESPONSE]),
    p(
        NETWORK,
        &["certificate signed by unknown authority"],
        EXACT,
        &[&C_NO_RESPONSE, &C_INTERCEPTING_PROXY],
    ),
    p(
        NETWORK,
        &["unable to get local issuer certificate"],
        EXACT,
        &[&C_NO_RESPONSE, &C_INTERCEPTING_PROXY],
    ),
    p(
        NETWORK,
        &["self-signed certificate"],
        EXACT,
        &[&C_NO_RESPONSE, &C_INTERCEPTING_PROXY],
    ),
    p(
        NETWORK,
        &["self signed certificate"],
        EXACT,
        &[&C_NO_RESPONSE, &C_INTERCEPTING_PROXY],
    ),
    p(
        NETWORK,
        &["CERTIFICATE_VERIFY_FAILED"],
        EXACT,
        &[&C_NO_RESPONSE, &C_INTERCEPTING_PROXY],
    ),
    p(
        NETWORK,
        &["PKIX path building failed"],
        EXACT,
        &[&C_NO_RESPONSE, &C_INTERCEPTING_PROXY],
    ),
    // --- Fragments of the HTTP response the library printed ----------------
    p(BODY, &["502 Bad Gateway"], EXACT, PROXY_PAGE),
    p(BODY, &["503 Service"], EXACT, PROXY_PAGE),
    p(BODY, &["504 Gateway"], EXACT, PROXY_PAGE),
    p(BODY, &["Response 502"], EXACT, PROXY_PAGE),
    p(BODY, &["Response 503"], EXACT, PROXY_PAGE),
    p(BODY, &["Response 504"], EXACT, PROXY_PAGE),
    p(BODY, &["302 Found"], EXACT, REDIRECTED),
    p(BODY, &["Found</a>"], EXACT, REDIRECTED),
    p(BODY, &["Redirecting to"], EXACT, REDIRECTED),
    p(BODY, &["405 Method Not Allowed"], EXACT, NOT_FOUND),
    p(BODY, &["method is not supported for"], EXACT, NOT_FOUND),
    p(BODY, &["<!DOCTYPE"], MESSAGE, HTML_PAGE),
    p(BODY, &["<html"], MESSAGE, HTML_PAGE),
    p(BODY, &["access_token=", "token_type="], MESSAGE, &[&C_FORM]),
    // --- The generic phrase (oauth-rules.md section 3), checklist order ----
    p(
        GENERIC,
        &["invalid OAuth response was received"],
        GENERIC_TIER,
        &[
            &C_HTML,
            &C_PROXY_ERROR_PAGE,
            &C_REDIRECT,
            &C_FORM,
            &C_CONTENT_TYPE,
            &C_ERROR_200,
            &C_EMPTY,
            &C_TOKEN_TYPE_MISSING,
            &C_EXPIRES_IN_STRING,
            &C_GZIP,
            &C_TRUNCATED,
            &C_BOM,
            &C_NO_RESPONSE,
        ],
    ),
];

// ---------------------------------------------------------------------------
// The public API
// ---------------------------------------------------------------------------

/// One recognised client library (or message family) and the pattern that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognition {
    /// The library or message family, e.g. `Spring Security`.
    pub library: &'static str,
    /// The most specific pattern of that library that matched the message.
    pub pattern: &'static str,
}

/// What a message means: the libraries recognised and the likely causes.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The libraries recognised, most specific match first (one entry per library).
    pub recognised: Vec<Recognition>,
    /// The likely causes, most likely first; one finding per code, all `info`.
    /// When nothing is recognised, a single `explain-unrecognised` finding.
    pub findings: Vec<Finding>,
}

/// Explains a message printed by an OAuth client library: recognises the
/// library and returns the likely causes, ranked, each with the gatewise
/// command to run next. Input beyond 64 KiB is ignored; never panics.
pub fn explain(message: &str) -> Explanation {
    let text = normalise(cap(message));
    let lower = text.to_ascii_lowercase();

    let mut merged: Vec<Merged> = Vec::new();
    let mut recognised: Vec<((u8, usize), Recognition)> = Vec::new();

    for (pi, pattern) in PATTERNS.iter().enumerate() {
        let Some(spans) = match_all(&lower, pattern.all) else {
            continue;
        };
        let quotes: Vec<String> = spans
            .iter()
            .map(|&(start, end)| format!("\"{}\"", quote(&text, start, end)))
            .collect();
        let evidence = format!("{} ({})", quotes.join(" ... "), pattern.library);

        let key = (pattern.tier, pi);
        let first = pattern.all.first().copied().unwrap_or_default();
        match recognised
            .iter_mut()
            .find(|(_, r)| r.library == pattern.library)
        {
            Some(entry) => {
                if key < entry.0 {
                    *entry = (
                        key,
                        Recognition {
                            library: pattern.library,
                            pattern: first,
                        },
                    );
                }
            }
            None => recognised.push((
                key,
                Recognition {
                    library: pattern.library,
                    pattern: first,
                },
            )),
        }

        for (ci, cause) in pattern.causes.iter().enumerate() {
            let rank = (pattern.tier, ci, pi);
            match merged
                .iter_mut()
                .find(|m| m.cause.check.code == cause.check.code)
            {
                Some(m) => {
                    m.rank = m.rank.min(rank);
                    if !m.evidence.iter().any(|(_, e)| *e == evidence) {
                        m.evidence.push((rank, evidence.clone()));
                    }
                }
                None => merged.push(Merged {
                    rank,
                    cause,
                    evidence: vec![(rank, evidence.clone())],
                }),
            }
        }
    }

    recognised.sort_by_key(|(key, _)| *key);
    merged.sort_by_key(|m| m.rank);

    let findings = if merged.is_empty() {
        vec![unrecognised(&text)]
    } else {
        merged.into_iter().map(Merged::into_finding).collect()
    };
    Explanation {
        recognised: recognised.into_iter().map(|(_, r)| r).collect(),
        findings,
    }
}

/// A cause reached by one or more patterns.
struct Merged {
    rank: (u8, usize, usize),
    cause: &'static Cause,
    evidence: Vec<((u8, usize, usize), String)>,
}

impl Merged {
    fn into_finding(mut self) -> Finding {
        self.evidence.sort_by_key(|(rank, _)| *rank);
        let mut parts = self.evidence.into_iter().map(|(_, e)| e);
        let mut evidence = format!("matched {}", parts.next().unwrap_or_default());
        for (i, more) in parts.enumerate() {
            if i >= 2 {
                evidence.push_str("; ...");
                break;
            }
            evidence.push_str("; also ");
            evidence.push_str(&more);
        }
        Finding::new(self.cause.check, self.cause.title)
            .evidence(evidence)
            .cause(self.cause.cause)
            .fix(self.cause.fix)
    }
}

fn unrecognised(text: &str) -> Finding {
    let evidence = if text.is_empty() {
        "the message is empty".to_string()
    } else {
        format!(
            "no known pattern in \"{}\"",
            quote(text, 0, text.len().min(MAX_QUOTE_BYTES))
        )
    };
    Finding::new(C_UNRECOGNISED.check, C_UNRECOGNISED.title)
        .evidence(evidence)
        .cause(C_UNRECOGNISED.cause)
        .fix(C_UNRECOGNISED.fix)
}

// ---------------------------------------------------------------------------
// The matcher
// ---------------------------------------------------------------------------

/// Cuts the message to [`MAX_MESSAGE_BYTES`] at a character boundary.
fn cap(message: &str) -> &str {
    let end = message.floor_char_boundary(MAX_MESSAGE_BYTES);
    message.get(..end).unwrap_or_default()
}

/// Collapses runs of whitespace to one space, drops the backslash of `\"`
/// (messages copied from logs or debug output), and trims the ends.
fn normalise(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        if c == '\\' && chars.peek() == Some(&'"') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Finds every fragment in `lower` (already ASCII-lowercased); returns the
/// byte spans, or `None` when one is missing.
fn match_all(lower: &str, fragments: &[&str]) -> Option<Vec<(usize, usize)>> {
    fragments
        .iter()
        .map(|fragment| find_fragment(lower, &fragment.to_ascii_lowercase()))
        .collect()
}

/// Finds `needle` in `hay`. Identifier-like needles (OAuth error codes such
/// as `invalid_grant`, numbered codes such as `AADSTS70000`) must stand
/// alone: `AADSTS70000` does not match inside `AADSTS700003`.
fn find_fragment(hay: &str, needle: &str) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let whole_word = needle.bytes().all(is_word_byte)
        && (needle.contains('_') || needle.bytes().last().is_some_and(|b| b.is_ascii_digit()));
    let bytes = hay.as_bytes();
    hay.match_indices(needle)
        .map(|(start, _)| (start, start + needle.len()))
        .find(|&(start, end)| {
            !whole_word
                || (start
                    .checked_sub(1)
                    .and_then(|i| bytes.get(i))
                    .is_none_or(|b| !is_word_byte(*b))
                    && bytes.get(end).is_none_or(|b| !is_word_byte(*b)))
        })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The text of a span, cut to [`MAX_QUOTE_BYTES`] at a character boundary.
fn quote(text: &str, start: usize, end: usize) -> String {
    let limit = end.min(start.saturating_add(MAX_QUOTE_BYTES));
    let cut = text.floor_char_boundary(limit);
    let slice = text.get(start..cut).unwrap_or_default();
    if cut < end {
        format!("{slice}...")
    } else {
        slice.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Asserts the most likely cause of `message`, and that `library` was recognised.
    #[track_caller]
    fn assert_top(message: &str, library: &str, rule: &str, code: &str) {
        let ex = explain(message);
        let f = ex.findings.first().expect("at least one finding");
        assert_eq!(
            (f.rule, f.code),
            (rule, code),
            "message: {message}\nfindings: {:#?}",
            ex.findings.iter().map(|f| f.code).collect::<Vec<_>>()
        );
        assert!(
            ex.recognised.iter().any(|r| r.library == library),
            "{library} not recognised in {:?}",
            ex.recognised
        );
    }

    fn codes(message: &str) -> Vec<&'static str> {
        explain(message).findings.iter().map(|f| f.code).collect()
    }

    // --- the catalogue ------------------------------------------------------

    #[test]
    fn codes_are_unique_kebab_case_and_prefixed() {
        let mut seen = BTreeSet::new();
        for c in CHECKS {
            assert!(seen.insert(c.code), "duplicate code {}", c.code);
            assert!(c.code.starts_with("explain-"), "{}", c.code);
            assert!(
                c.code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{} is not kebab-case",
                c.code
            );
            assert!(
                !c.code.ends_with('-') && !c.code.contains("--"),
                "{}",
                c.code
            );
            assert_eq!(c.severity, Severity::Info, "{}", c.code);
            assert!(c.rule.contains('-'), "{}", c.rule);
            assert!(!c.spec.is_empty() && !c.summary.is_empty(), "{}", c.code);
        }
    }

    #[test]
    fn every_emitted_code_is_in_checks() {
        let codes: BTreeSet<&str> = CHECKS.iter().map(|c| c.code).collect();
        let mut emitted = BTreeSet::new();
        for pattern in PATTERNS {
            assert!(!pattern.all.is_empty(), "{}", pattern.library);
            assert!(!pattern.causes.is_empty(), "{:?}", pattern.all);
            for fragment in pattern.all {
                assert!(!fragment.trim().is_empty(), "{}", pattern.library);
            }
            for cause in pattern.causes {
                assert!(codes.contains(cause.check.code), "{}", cause.check.code);
                emitted.insert(cause.check.code);
            }
        }
        assert!(codes.contains(C_UNRECOGNISED.check.code));
        emitted.insert(C_UNRECOGNISED.check.code);
        // And no check is dead: every code in CHECKS can be emitted.
        assert_eq!(codes, emitted);
    }

    #[test]
    fn every_fix_names_a_gatewise_command() {
        for pattern in PATTERNS {
            for cause in pattern.causes {
                assert!(
                    cause.fix.contains("gatewise doctor"),
                    "{} has no command",
                    cause.check.code
                );
                assert!(!cause.title.is_empty() && !cause.cause.is_empty());
            }
        }
        assert!(C_UNRECOGNISED.fix.contains("gatewise doctor response"));
    }

    #[test]
    fn patterns_are_not_duplicated() {
        let mut seen = BTreeSet::new();
        for pattern in PATTERNS {
            let key: Vec<String> = pattern.all.iter().map(|f| f.to_ascii_lowercase()).collect();
            assert!(seen.insert(key), "duplicate pattern {:?}", pattern.all);
        }
    }

    // --- Spring Security -----------------------------------------------------

    #[test]
    fn spring_security() {
        assert_top(
            "[invalid_token_response] An error occurred parsing the Access Token response: \
             Missing JSON object member with key \"token_type\"",
            SPRING,
            "TR-05",
            "explain-token-type-missing",
        );
        assert_top(
            "[invalid_token_response] An error occurred while attempting to retrieve the OAuth 2.0 \
             Access Token Response: Error while extracting response for type [class \
             org.springframework.security.oauth2.core.endpoint.OAuth2AccessTokenResponse] and \
             content type [application/json;charset=utf-8]; nested exception is \
             org.springframework.http.converter.HttpMessageNotReadableException: An error \
             occurred reading the OAuth 2.0 Access Token Response: tokenType cannot be null",
            SPRING,
            "TR-05",
            "explain-token-type-missing",
        );
        assert_top(
            "[invalid_token_response] An error occurred parsing the Access Token response: \
             Content type 'text/html' not supported for bodyType=java.util.Map<java.lang.String, \
             java.lang.Object>",
            SPRING,
            "HT-01",
            "explain-html-instead-of-json",
        );
        assert_top(
            "[authorization_request_not_found]",
            SPRING,
            "AZ-02",
            "explain-session-not-shared",
        );
        assert_top(
            "Bearer error=\"invalid_token\", error_description=\"An error occurred while \
             attempting to decode the Jwt: Signed JWT rejected: Another algorithm expected, or no \
             matching key(s) found\"",
            SPRING,
            "JB-01",
            "explain-alg-not-allowed",
        );
        assert_top(
            "WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"Invalid token \
             issuer. Expected 'http://keycloak:8080/auth/realms/sample', but was \
             'http://keycloak/auth/realms/sample'\"",
            SPRING,
            "ID-02",
            "explain-issuer-host-mismatch",
        );
    }

    // --- oauthlib / requests-oauthlib ------------------------------------------

    #[test]
    fn oauthlib() {
        assert_top(
            "ERROR oauthlib.oauth2.rfc6749.errors.MissingTokenError: (missing_token) Missing \
             access token parameter.",
            OAUTHLIB,
            "TR-04",
            "explain-access-token-missing",
        );
        assert_top(
            "Warning: Scope has changed from \"https://www.googleapis.com/auth/userinfo.email \
             https://www.googleapis.com/auth/userinfo.profile\" to \"openid \
             https://www.googleapis.com/auth/userinfo.email \
             https://www.googleapis.com/auth/userinfo.profile\".",
            OAUTHLIB,
            "TR-07",
            "explain-scope-changed",
        );
        assert_top(
            "ERROR oauthlib.oauth2.rfc6749.errors.InvalidClientError: (invalid_client) client \
             authentication failed",
            OAUTHLIB,
            "CA-01",
            "explain-basic-auth-encoding",
        );
        assert_top(
            "ERROR oauthlib.oauth2.rfc6749.errors.InvalidGrantError: (invalid_grant) error \
             reported with HTTP 200",
            OAUTHLIB,
            "AZ-06",
            "explain-code-reused-or-expired",
        );
    }

    // --- Authlib and the Python HTTP stacks ------------------------------------

    #[test]
    fn authlib() {
        assert_top(
            "ERROR builtins.ValueError: Token endpoint response is not a JSON object (HTTP 200).",
            AUTHLIB,
            "HT-01",
            "explain-html-instead-of-json",
        );
        assert_top(
            "ERROR authlib.integrations.base_client.errors.OAuthError: invalid_client: client \
             authentication failed",
            OAUTH_CODE,
            "CA-01",
            "explain-basic-auth-encoding",
        );
        assert_top(
            "ERROR requests.exceptions.HTTPError: 502 Server Error: Bad Gateway for url: \
             http://127.0.0.1:9499/html502/token",
            PY_HTTP,
            "ER-04",
            "explain-proxy-error-page",
        );
        assert_top(
            "ERROR requests.exceptions.HTTPError: 404 Client Error: Not Found for url: \
             http://127.0.0.1:9499/login?next=/token",
            PY_HTTP,
            "TR-01",
            "explain-redirect-to-login",
        );
        assert_top(
            "ERROR httpx.HTTPStatusError: Redirect response '302 Found' for url \
             'http://127.0.0.1:9499/redirect302/token'\\nRedirect location: '/login?next=/token'",
            PY_HTTP,
            "TR-01",
            "explain-redirect-to-login",
        );
        assert_top(
            "authlib.integrations.base_client.errors.MismatchingStateError: mismatching_state: \
             CSRF Warning! State not equal in request and response.",
            AUTHLIB,
            "AZ-02",
            "explain-state-cookie-missing",
        );
    }

    // --- golang.org/x/oauth2 ---------------------------------------------------

    #[test]
    fn golang_x_oauth2() {
        assert_top(
            "oauth2: cannot parse json: invalid character '<' looking for beginning of value",
            XOAUTH2,
            "HT-01",
            "explain-html-instead-of-json",
        );
        assert_top(
            "Request failed: invalid character 'a' looking for beginning of value",
            XOAUTH2,
            "TR-02",
            "explain-form-encoded-response",
        );
        assert_top(
            "oauth2: cannot fetch token: 401 Unauthorized\nResponse: \
             {\"error\":\"invalid_client\",\"error_description\":\"client authentication failed\"}",
            XOAUTH2,
            "CA-01",
            "explain-basic-auth-encoding",
        );
        assert_top(
            "oauth2: cannot fetch token: 502 Bad Gateway\nResponse: <html><head><title>502 Bad \
             Gateway</title></head></html>",
            XOAUTH2,
            "ER-04",
            "explain-proxy-error-page",
        );
    }

    // --- go-oidc ---------------------------------------------------------------

    #[test]
    fn go_oidc() {
        assert_top(
            "oidc: issuer did not match the issuer returned by provider, expected \
             \"https://appleid.apple.com\" got \"https://account.apple.com\"",
            GO_OIDC,
            "MD-04",
            "explain-discovery-issuer-mismatch",
        );
        assert_top(
            "oidc: issuer did not match the issuer returned by provider, expected \
             \"https://login.microsoftonline.com/common/v2.0\" got \
             \"https://login.microsoftonline.com/{tenantid}/v2.0\"",
            GO_OIDC,
            "MD-07",
            "explain-templated-issuer",
        );
        assert_top(
            "oidc: id token issued by a different provider, expected \
             \"https://accounts.google.com\" got \"accounts.google.com\"",
            GO_OIDC,
            "ID-02",
            "explain-issuer-form-mismatch",
        );
    }

    // --- Rust oauth2 / openidconnect ------------------------------------------

    #[test]
    fn rust_oauth2_crates() {
        assert_top(
            "ERROR RequestTokenError::Parse: missing field 'token_type' at line 1 column 44 | \
             path=. | body=\"{\\\"access_token\\\":\\\"stub-at\\\",\\\"expires_in\\\":3600}\"",
            RUST,
            "TR-05",
            "explain-token-type-missing",
        );
        assert_top(
            "Failed to parse server response: missing field `token_type`",
            RUST,
            "TR-05",
            "explain-token-type-missing",
        );
        assert_top(
            "Failed to parse server response",
            RUST,
            "TR-05",
            "explain-token-type-missing",
        );
        assert_top(
            "ERROR RequestTokenError::Parse: missing field 'access_token' at line 1 column 76 | \
             path=. | body=\"{\\\"error\\\":\\\"invalid_grant\\\",\\\"error_description\\\":\\\"error \
             reported with HTTP 200\\\"}\"",
            RUST,
            "TR-11",
            "explain-error-with-200",
        );
        assert_top(
            "ERROR RequestTokenError::Parse: invalid type: string \"3600\", expected u64 at line 1 \
             column 67 | path=expires_in",
            RUST,
            "TR-06",
            "explain-expires-in-string",
        );
        assert_top(
            "ERROR RequestTokenError::Other: unexpected response Content-Type: \
             \"application/x-www-form-urlencoded\", should be 'application/json'",
            RUST,
            "TR-02",
            "explain-form-encoded-response",
        );
        assert_top(
            "ERROR RequestTokenError::Other: unexpected response Content-Type: \"text/plain\", \
             should be 'application/json'",
            RUST,
            "TR-02",
            "explain-content-type-not-json",
        );
        assert_top(
            "ERROR RequestTokenError::Other: unexpected response Content-Type: \"text/html\", \
             should be 'application/json'",
            RUST,
            "HT-01",
            "explain-html-instead-of-json",
        );
        assert_top(
            "ERROR RequestTokenError::Other: server returned empty response body",
            RUST,
            "TR-03",
            "explain-empty-body",
        );
        assert_top(
            "ERROR RequestTokenError::Parse: EOF while parsing a value at line 1 column 48 | \
             path=? | body=\"{\\\"access_token\\\":\\\"stub-at\\\",\\\"token_type\\\":\\\"Bearer\\\",\"",
            RUST,
            "HT-03",
            "explain-truncated-json",
        );
        assert_top(
            "ERROR RequestTokenError::Parse: expected value at line 1 column 1 | path=. | \
             body=\"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad \
             Gateway</h1></center><hr><center>nginx</center></body></html>\"",
            RUST,
            "ER-04",
            "explain-proxy-error-page",
        );
        assert_top(
            "ERROR RequestTokenError::Parse: expected value at line 1 column 1 | path=. | \
             body=\"<a href=/login>Found</a>\"",
            RUST,
            "TR-01",
            "explain-redirect-to-login",
        );
        assert_top(
            "RequestTokenError::Parse: expected value at line 1 column 1",
            RUST,
            "HT-01",
            "explain-html-instead-of-json",
        );
    }

    // --- openid-client / oauth4webapi -----------------------------------------

    #[test]
    fn openid_client() {
        assert_top(
            "ERROR ClientError code=OAUTH_INVALID_RESPONSE: invalid response encountered | cause: \
             OperationProcessingError: \"response\" body \"token_type\" property must be a string",
            OPENID_CLIENT,
            "TR-05",
            "explain-token-type-missing",
        );
        assert_top(
            "ERROR ClientError code=OAUTH_INVALID_RESPONSE: invalid response encountered | cause: \
             OperationProcessingError: \"response\" body \"access_token\" property must be a string",
            OPENID_CLIENT,
            "TR-11",
            "explain-error-with-200",
        );
        assert_top(
            "ERROR ClientError code=OAUTH_RESPONSE_IS_NOT_JSON: unexpected response content-type | \
             cause: Response 200 application/x-www-form-urlencoded",
            OPENID_CLIENT,
            "TR-02",
            "explain-form-encoded-response",
        );
        assert_top(
            "ERROR ClientError code=OAUTH_RESPONSE_IS_NOT_JSON: unexpected response content-type | \
             cause: Response 200 text/html",
            OPENID_CLIENT,
            "HT-01",
            "explain-html-instead-of-json",
        );
        assert_top(
            "ERROR ClientError code=OAUTH_RESPONSE_IS_NOT_CONFORM: unexpected HTTP response status \
             code | cause: Response 502 text/html",
            OPENID_CLIENT,
            "ER-04",
            "explain-proxy-error-page",
        );
        assert_top(
            "ERROR ClientError code=OAUTH_RESPONSE_IS_NOT_CONFORM: unexpected HTTP response status \
             code | cause: Response 302 text/html",
            OPENID_CLIENT,
            "TR-01",
            "explain-redirect-to-login",
        );
        assert_top(
            "ERROR ClientError code=OAUTH_PARSE_ERROR: parsing error occured | cause: \
             OperationProcessingError: failed to parse \"response\" body as JSON",
            OPENID_CLIENT,
            "HT-03",
            "explain-truncated-json",
        );
        assert_top(
            "WWWAuthenticateError: server responded with a challenge in the WWW-Authenticate HTTP \
             Header",
            OPENID_CLIENT,
            "BR-06",
            "explain-www-authenticate-on-success",
        );
        assert_top(
            "unexpected iss value, expected https://dev-abc.us.auth0.com, got: \
             https://dev-abc.us.auth0.com/",
            OPENID_CLIENT,
            "ID-02",
            "explain-issuer-form-mismatch",
        );
        assert_top(
            "unexpected iss value, expected https://account.apple.com/, got: \
             https://appleid.apple.com/",
            OPENID_CLIENT,
            "MD-04",
            "explain-discovery-issuer-mismatch",
        );
        assert_top(
            "RPError: JWT not active yet, now 1642051718, nbf 1642051719",
            OPENID_CLIENT,
            "CK-02",
            "explain-clock-skew",
        );
        assert_top(
            "unexpected \"iss\" (issuer) response parameter value",
            OPENID_CLIENT,
            "AZ-04",
            "explain-callback-iss-unexpected",
        );
        assert_top(
            "TypeError: checks.state argument is missing",
            OPENID_CLIENT,
            "AZ-02",
            "explain-state-cookie-missing",
        );
    }

    // --- Auth.js / NextAuth -----------------------------------------------------

    #[test]
    fn authjs_nextauth() {
        assert_top(
            "[next-auth][error][OAUTH_CALLBACK_ERROR] issuer must be configured on the issuer",
            AUTHJS,
            "AZ-04",
            "explain-callback-iss-unexpected",
        );
        assert_top(
            "[next-auth][error][OAUTH_CALLBACK_ERROR] State cookie was missing.",
            AUTHJS,
            "AZ-02",
            "explain-state-cookie-missing",
        );
    }

    // --- MSAL, Microsoft.IdentityModel, ASP.NET Core, Entra ---------------------

    #[test]
    fn msal_and_dotnet() {
        assert_top(
            "MsalServiceException: non_parsable_oauth_error: An error response was returned by \
             the OAuth2 server, but it could not be parsed. Please inspect the exception \
             properties for details.",
            MSAL,
            "ER-04",
            "explain-error-body-not-json",
        );
        assert_top(
            "AccessTokenTypeMissing: The response from the token endpoint does not contain the \
             token_type parameter",
            MSAL,
            "TR-05",
            "explain-token-type-missing",
        );
        assert_top(
            "BrowserAuthError: failed_to_parse_response: Failed to parse network response. Check \
             network trace.",
            MSAL,
            "HT-01",
            "explain-html-instead-of-json",
        );
        assert_top(
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
            ENTRA,
            "CA-04",
            "explain-json-request-body",
        );
        assert_top(
            "code=400 AADSTS900144: The request body must contain the following parameter: \
             'scope'.",
            ENTRA,
            "CA-04",
            "explain-request-parameter-missing",
        );
        assert_top(
            "OAuthException: Invalid response from azure ... AADSTS70002: Error validating \
             credentials. AADSTS70000: 'redirect_uri' must be provided when presenting an \
             authorization code requested with a 'redirect_uri'.",
            ENTRA,
            "CA-05",
            "explain-redirect-uri-mismatch",
        );
        assert_top(
            "IDX10205: Issuer validation failed. Issuer: \
             'https://login.microsoftonline.com/72f988bf/v2.0'. Did not match: \
             validationParameters.ValidIssuer: 'https://sts.windows.net/72f988bf/'",
            IDENTITY_MODEL,
            "AT-03",
            "explain-entra-token-version",
        );
        assert_top(
            "IDX10501: Signature validation failed. Unable to match 'kid': 'abc123'",
            IDENTITY_MODEL,
            "JK-03",
            "explain-signing-key-not-found",
        );
        assert_top(
            "IDX10503: Signature validation failed",
            IDENTITY_MODEL,
            "AT-05",
            "explain-graph-token",
        );
        assert_top(
            "IDX10223: Lifetime validation failed. The token is expired.",
            IDENTITY_MODEL,
            "ID-06",
            "explain-token-expired",
        );
        assert_top(
            "Exception: Correlation failed.",
            IDENTITY_MODEL,
            "AZ-07",
            "explain-samesite-cookie-dropped",
        );
        assert_top(
            "Bearer error=\"invalid_token\", error_description=\"The signature key was not found\"",
            IDENTITY_MODEL,
            "JK-03",
            "explain-signing-key-not-found",
        );
    }

    #[test]
    fn windows_broker() {
        assert_top(
            "0xCAA90015 ERROR_ADAL_OAUTH_RESPONSE_INVALID Server returned invalid OAuth response",
            WAM,
            "HT-01",
            "explain-intercepting-proxy",
        );
        assert_top(
            "Error 0xCAA60007 ERROR_ADAL_JSON_MALFORMED",
            WAM,
            "HT-01",
            "explain-intercepting-proxy",
        );
    }

    // --- Dart oauth2 --------------------------------------------------------------

    #[test]
    fn dart_oauth2() {
        assert_top(
            "FormatException: Invalid OAuth response for \
             \"https://github.com/login/oauth/access_token\": Content-Type was \
             \"application/x-www-form-urlencoded; charset=utf-8\", expected \"application/json\"",
            DART,
            "TR-02",
            "explain-form-encoded-response",
        );
        assert_top(
            "Invalid OAuth response for \"https://api.dropbox.com/1/oauth2/token\": content-type \
             was \"text/javascript\", expected \"application/json\"",
            DART,
            "TR-02",
            "explain-content-type-not-json",
        );
        assert_top(
            "Invalid OAuth response for \"http://localhost:9000/oauth2/token\": parameter \
             \"expires_in\" was not an int, was \"299\"",
            DART,
            "TR-06",
            "explain-expires-in-string",
        );
        assert_top(
            "Invalid OAuth response for \"https://id.twitch.tv/oauth2/token\" parameter \"scope\" \
             was not a string, was \"[channel:manage:polls, channel:read:polls]\"",
            DART,
            "TR-07",
            "explain-scope-not-string",
        );
        assert_top(
            "Invalid OAuth response for \"https://www.reddit.com/api/v1/access_token\": required \
             parameter \"error\" was not a string, was \"400\"",
            DART,
            "ER-02",
            "explain-error-code-not-string",
        );
    }

    // --- PHP, passport, Node JSON -------------------------------------------------

    #[test]
    fn league_oauth2_client() {
        assert_top(
            "UnexpectedValueException: Invalid response received from Authorization Server. \
             Expected JSON.",
            LEAGUE,
            "MD-03",
            "explain-wrong-token-endpoint",
        );
    }

    #[test]
    fn passport_oauth2() {
        assert_top(
            "InternalOAuthError: Failed to obtain access token\n    at \
             Strategy.OAuth2Strategy._createOAuthError \
             (node_modules/passport-oauth2/lib/strategy.js:423:17)\n    at \
             TLSSocket.socketErrorListener",
            PASSPORT,
            "HT-05",
            "explain-no-http-response",
        );
    }

    #[test]
    fn node_json_parse() {
        assert_top(
            "SyntaxError: Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON",
            NODE_JSON,
            "HT-01",
            "explain-html-instead-of-json",
        );
        assert_top(
            "SyntaxError: Unexpected token a in JSON at position 0",
            NODE_JSON,
            "TR-02",
            "explain-form-encoded-response",
        );
        assert_top(
            "SyntaxError: Unexpected token 'a', \"access_tok\"... is not valid JSON",
            NODE_JSON,
            "TR-02",
            "explain-form-encoded-response",
        );
        assert_top(
            "SyntaxError: Unexpected token '\\u001f', \"\\u001f\\b\\u0000\\u0000\"... is not valid \
             JSON",
            NODE_JSON,
            "HT-02",
            "explain-gzip-not-decoded",
        );
        // The same with the raw control characters instead of escapes.
        assert_top(
            "SyntaxError: Unexpected token '\u{1f}', \"\u{1f}\u{8b}\"... is not valid JSON",
            NODE_JSON,
            "HT-02",
            "explain-gzip-not-decoded",
        );
        assert_top(
            "SyntaxError: Unexpected end of JSON input",
            JSON_PARSER,
            "TR-03",
            "explain-empty-body",
        );
    }

    #[test]
    fn transport_failures() {
        assert_top(
            "Post \"https://as.example.com/token\": dial tcp: lookup as.example.com: no such host",
            NETWORK,
            "HT-05",
            "explain-no-http-response",
        );
        assert_top(
            "FetchError: request to https://as.example.com/token failed, reason: unable to get \
             local issuer certificate",
            NETWORK,
            "HT-05",
            "explain-no-http-response",
        );
        // x/oauth2's "cannot fetch token" always carries a status: never HT-05 by itself.
        assert!(
            !codes("oauth2: cannot fetch token: 400 Bad Request")
                .contains(&"explain-no-http-response")
        );
    }

    // --- PKCE, DPoP, device flow, keys, expiry --------------------------------------

    #[test]
    fn pkce() {
        assert_top(
            "{\"error\":\"invalid_grant\",\"error_description\":\"PKCE verification failed: \
             Invalid code verifier\"}",
            KEYCLOAK,
            "PK-01",
            "explain-pkce-verifier-invalid",
        );
        assert_top(
            "type=CODE_TO_TOKEN_ERROR, error=invalid_code_verifier",
            KEYCLOAK,
            "PK-01",
            "explain-pkce-verifier-invalid",
        );
        assert_top(
            "invalid_grant: PKCE verification failed",
            KEYCLOAK,
            "PK-04",
            "explain-pkce-verifier-mismatch",
        );
    }

    #[test]
    fn dpop_and_device_flow() {
        assert_top(
            "{\"error\":\"use_dpop_nonce\",\"error_description\":\"Authorization server requires \
             nonce in DPoP proof\"}",
            OAUTH_CODE,
            "DP-07",
            "explain-dpop-nonce-required",
        );
        assert_top(
            "UseDPoPNonceError",
            OAUTH_CODE,
            "DP-07",
            "explain-dpop-nonce-required",
        );
        assert_top(
            "HTTPError: 400 {\"error\":\"authorization_pending\"}",
            OAUTH_CODE,
            "ER-05",
            "explain-device-flow-keep-polling",
        );
    }

    #[test]
    fn signing_keys() {
        assert_top(
            "SigningKeyNotFoundError: Unable to find a signing key that matches 'abc123'",
            JWKS_RSA,
            "JK-03",
            "explain-signing-key-not-found",
        );
        assert_top(
            "Failed to get signing key: Unable to find key with kid: 656ea50",
            JWKS_RSA,
            "JK-03",
            "explain-signing-key-not-found",
        );
        assert_top(
            "SigningKeyNotFoundError: Unable to find a signing key that matches 'k1' (token from \
             https://company.okta.com/oauth2/v1/authorize)",
            JWKS_RSA,
            "JK-03",
            "explain-okta-org-token",
        );
    }

    #[test]
    fn expired_tokens() {
        for m in [
            "TokenExpiredError: jwt expired",
            "Error(ExpiredSignature)",
            "token has invalid claims: token is expired",
            "jwt.exceptions.ExpiredSignatureError: Signature has expired",
        ] {
            assert_top(m, JWT_LIBS, "ID-06", "explain-token-expired");
            assert_eq!(codes(m), ["explain-token-expired", "explain-clock-skew"]);
        }
    }

    // --- bare OAuth error codes -------------------------------------------------------

    #[test]
    fn invalid_client() {
        assert_top(
            "{\"error\":\"invalid_client\"}",
            OAUTH_CODE,
            "CA-01",
            "explain-basic-auth-encoding",
        );
        assert_top(
            "Client error: `POST https://appleid.apple.com/auth/token` resulted in a `400 Bad \
             Request` response: {\"error\":\"invalid_client\"}",
            APPLE,
            "CA-06",
            "explain-client-secret-jwt-expired",
        );
    }

    #[test]
    fn invalid_grant() {
        assert_eq!(
            codes("{\"error\":\"invalid_grant\"}"),
            [
                "explain-code-reused-or-expired",
                "explain-redirect-uri-mismatch",
                "explain-pkce-verifier-mismatch",
                "explain-clock-skew",
                "explain-refresh-token-revoked",
            ]
        );
        assert_top(
            "invalid_grant: expired access/refresh token",
            SALESFORCE,
            "ER-02",
            "explain-refresh-token-revoked",
        );
        assert_top(
            "POST https://login.salesforce.com/services/oauth2/token 400 \
             {\"error\":\"invalid_grant\",\"error_description\":\"authentication failure\"}",
            SALESFORCE,
            "ER-02",
            "explain-refresh-token-revoked",
        );
        assert_top(
            "{\"error\":\"invalid_grant\",\"error_description\":\"Incorrect redirect_uri\"}",
            KEYCLOAK,
            "CA-05",
            "explain-redirect-uri-mismatch",
        );
    }

    #[test]
    fn invalid_scope() {
        assert_top(
            "{\"error\":\"invalid_scope\",\"error_description\":\"The requested scope is \
             invalid\"}",
            OAUTH_CODE,
            "ER-02",
            "explain-scope-rejected",
        );
    }

    // --- the generic phrase and the unrecognised ----------------------------------------

    #[test]
    fn generic_phrase() {
        let ex = explain("Error: an invalid OAuth response was received");
        assert_eq!(ex.recognised.len(), 1);
        assert_eq!(ex.recognised[0].library, GENERIC);
        let top = &ex.findings[0];
        assert_eq!(
            (top.rule, top.code),
            ("HT-01", "explain-html-instead-of-json")
        );
        assert!(ex.findings.len() >= 10);
        for f in &ex.findings {
            assert!(f.fix.contains("gatewise doctor"), "{}", f.code);
        }
        // The transport, body-shape and member causes all appear.
        let rules: BTreeSet<&str> = ex.findings.iter().map(|f| f.rule).collect();
        for rule in [
            "HT-01", "HT-02", "HT-03", "HT-04", "HT-05", "TR-02", "TR-03", "TR-05", "TR-06",
            "TR-11",
        ] {
            assert!(rules.contains(rule), "{rule} missing");
        }
    }

    #[test]
    fn specific_patterns_outrank_the_generic_phrase() {
        let ex = explain(
            "An invalid OAuth response was received: RequestTokenError::Parse: missing field \
             `token_type`",
        );
        assert_eq!(ex.findings[0].code, "explain-token-type-missing");
        assert_eq!(ex.recognised[0].library, RUST);
        assert_eq!(ex.recognised.last().map(|r| r.library), Some(GENERIC));
    }

    #[test]
    fn unrecognised_junk_empty_and_huge() {
        let huge = "x".repeat(1 << 20);
        let control: String = (0u8..32).map(char::from).collect();
        for m in [
            "",
            "   \n\t ",
            "hello world",
            "\u{0}\u{ffff}\u{10ffff}",
            control.as_str(),
            huge.as_str(),
        ] {
            let ex = explain(m);
            assert!(ex.recognised.is_empty(), "{:?}", ex.recognised);
            assert_eq!(ex.findings.len(), 1);
            let f = &ex.findings[0];
            assert_eq!((f.rule, f.code), ("EX-01", "explain-unrecognised"));
            assert!(f.fix.contains("gatewise doctor response"));
            assert!(f.evidence.len() < 400, "evidence not capped");
        }
    }

    #[test]
    fn input_beyond_64_kib_is_ignored() {
        let mut m = "é".repeat(MAX_MESSAGE_BYTES / 2 - 1);
        m.push_str("ü invalid_grant");
        assert_eq!(codes(&m), ["explain-unrecognised"]);
        let mut m = "é".repeat(1000);
        m.push_str(" invalid_grant");
        assert_eq!(codes(&m)[0], "explain-code-reused-or-expired");
    }

    #[test]
    fn every_prefix_and_suffix_is_safe() {
        let m = "Unexpected token 'ï', \"\u{feff}{\"é\"... is not valid JSON — AADSTS70000 ✓ \
                 invalid_grant <html>";
        for (i, _) in m.char_indices() {
            let _ = explain(&m[..i]);
            let _ = explain(&m[i..]);
        }
    }

    // --- matcher, merging and evidence ---------------------------------------------------

    #[test]
    fn matching_is_case_insensitive_and_whitespace_tolerant() {
        assert_top(
            "MISSING   ACCESS\n TOKEN\tPARAMETER",
            OAUTHLIB,
            "TR-04",
            "explain-access-token-missing",
        );
    }

    #[test]
    fn codes_stand_alone() {
        // AADSTS700003 is not AADSTS70000; invalid_token_response is not invalid_token.
        assert_eq!(
            codes("AADSTS700003: Device object was not found"),
            ["explain-unrecognised"]
        );
        let ex = explain("[invalid_token_response] something");
        assert!(
            !ex.findings
                .iter()
                .any(|f| f.code == "explain-bearer-challenge")
        );
        assert!(find_fragment("xinvalid_grant", "invalid_grant").is_none());
        assert!(find_fragment("(invalid_grant)", "invalid_grant").is_some());
        assert!(find_fragment("expiredsignatureerror", "expiredsignature").is_some());
    }

    #[test]
    fn causes_are_merged_and_deduplicated() {
        // Spring's catch-all, a token_type pattern and an HTML body all match.
        let ex = explain(
            "[invalid_token_response] tokenType cannot be null; body=<html><body>x</body></html>",
        );
        let codes: Vec<&str> = ex.findings.iter().map(|f| f.code).collect();
        let unique: BTreeSet<&str> = codes.iter().copied().collect();
        assert_eq!(codes.len(), unique.len(), "{codes:?}");
        assert_eq!(codes[0], "explain-token-type-missing");
        // One recognition per library.
        let libs: Vec<&str> = ex.recognised.iter().map(|r| r.library).collect();
        let unique: BTreeSet<&str> = libs.iter().copied().collect();
        assert_eq!(libs.len(), unique.len(), "{libs:?}");
        assert_eq!(ex.recognised[0].pattern, "tokenType cannot be null");
        for f in &ex.findings {
            assert_eq!(f.severity, Severity::Info);
        }
    }

    #[test]
    fn evidence_quotes_the_message_and_names_the_library() {
        let ex = explain("Oops: JWT NOT ACTIVE YET, now 1, nbf 2");
        let f = &ex.findings[0];
        assert!(
            f.evidence.contains("\"JWT NOT ACTIVE YET\""),
            "{}",
            f.evidence
        );
        assert!(f.evidence.contains(OPENID_CLIENT), "{}", f.evidence);
        assert!(f.evidence.contains(JWT_LIBS), "{}", f.evidence);
        assert_eq!(f.spec, CLOCK_SKEW.spec);
        assert!(!f.title.is_empty() && !f.cause.is_empty() && !f.fix.is_empty());
    }
}
