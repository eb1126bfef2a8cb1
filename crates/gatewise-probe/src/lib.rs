//! The live doctor's network layer: it performs real HTTP exchanges and
//! reports them as the doctor sees them. Findings come from
//! `gatewise-core`; this crate only moves bytes, times them and classifies
//! what went wrong.
//!
//! - [`fetch::fetch`] performs one exchange (following up to five
//!   redirects): DNS (`lookup_host`), TCP connect, an optional proxy tunnel,
//!   TLS (rustls with the platform's roots plus an optional extra CA), then
//!   hyper's low-level HTTP/1.1 client on that connection, so every phase is
//!   timed on its own. Failures become a core
//!   [`Failure`](gatewise_core::diagnose::transport::Failure), never an error.
//! - [`transcript::Transcript`] is what happened: each hop's request and
//!   response, timings, the proxy used. It serializes to JSON, masks
//!   secrets, and renders as the raw capture text `gatewise doctor response`
//!   reads back.
//! - [`proxy`]: `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, given as values (the
//!   library never reads the environment).
//! - [`oauth`]: building token requests (client authentication per RFC 6749
//!   §2.3) and the two well-known metadata URLs.
//! - [`client_key`]: `private_key_jwt` (RFC 7523): the client's private
//!   key read from PEM or JWK, and a fresh client assertion per request.
//! - [`device`]: the device authorization grant (RFC 8628) played live:
//!   the user code shown, the token endpoint polled as §3.5 says.
//! - [`doctor`]: the live doctor's workflows (discovery, token), which feed
//!   each exchange to the core and collect its findings.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod client_key;
mod der;
pub mod device;
pub mod doctor;
pub mod fetch;
pub mod interactive;
mod mask;
pub mod oauth;
pub mod proxy;
pub mod tls;
pub mod transcript;

pub use fetch::{Options, Request, fetch};
pub use proxy::ProxySettings;
pub use transcript::{Exchange, Timings, Transcript};

/// Why a probe could not even be set up (bad input, not a network failure:
/// those are in the [`Transcript`]).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL cannot be used.
    #[error("{url}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The extra CA file holds no usable certificate.
    #[error("the CA file holds no usable PEM certificate: {0}")]
    CaFile(String),
    /// The proxy setting cannot be used.
    #[error("proxy {proxy}: {reason}")]
    Proxy {
        /// The proxy setting (credentials removed).
        proxy: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local resource the run needs (the loopback listener, randomness).
    #[error("{0}")]
    Setup(String),
    /// The client's private key (`private_key_jwt`) cannot be used.
    #[error("{file}: {reason}")]
    ClientKey {
        /// The file it was read from.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
}
