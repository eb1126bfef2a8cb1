//! The admin listener: the call log's API, the gateway's state, `/live`,
//! `/ready` and the OpenAPI document, on its own address (loopback by
//! default), behind a bearer token when configured.
//!
//! Reads go to a store opened on the call log's file beside the writer
//! (SQLite in WAL mode lets readers run while the writer appends) and run
//! in `spawn_blocking`, so no query ever holds up the async runtime.
//! Every error becomes HTTP in one place: [`error::AdminError`].

// The OpenAPI document is one `json!` literal, deeper than the default limit.
#![recursion_limit = "512"]

pub mod api;
pub mod dashboard;
pub mod error;
pub mod metrics;
pub mod openapi;

use gatewise_core::clock::Clock;
use gatewise_gateway::Gateway;
use gatewise_store::{CallLog, Counters};
use std::sync::{Arc, Mutex};

/// Reads the call-log writer's counters (queued, written, spooled, ...).
pub type WriterCounters = Arc<dyn Fn() -> Counters + Send + Sync>;

/// The OTLP span exporter's counters, as a snapshot (the binary reads them
/// from its exporter; this crate does not depend on it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanExportCounters {
    /// Calls waiting in the exporter's queue now.
    pub queued: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Sampled calls dropped because the queue was full (their spans are
    /// lost).
    pub dropped: u64,
    /// Spans lost to exports that failed or timed out.
    pub failed: u64,
}

/// Reads the OTLP span exporter's counters.
pub type SpanExportReader = Arc<dyn Fn() -> SpanExportCounters + Send + Sync>;

/// Reads (`None`) or replaces (`Some(directives)`) the running log filter
/// (`tracing` `EnvFilter` syntax: `info`, `gatewise_gateway=debug,info`);
/// returns the filter in force, or why the new one was refused.
pub type LogControl = Arc<dyn Fn(Option<&str>) -> Result<String, String> + Send + Sync>;

/// Everything the admin handlers read.
#[derive(Clone)]
pub struct Admin {
    pub(crate) calls: Option<Arc<Mutex<Box<dyn CallLog>>>>,
    pub(crate) gateway: Option<Arc<Gateway>>,
    pub(crate) writer: Option<WriterCounters>,
    pub(crate) spans: Option<SpanExportReader>,
    pub(crate) logging: Option<LogControl>,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("calls", &self.calls.is_some())
            .field("gateway", &self.gateway.is_some())
            .field("writer", &self.writer.is_some())
            .field("span_export", &self.spans.is_some())
            .field("token", &self.token.as_ref().map(|_| "«set»"))
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// An admin API with nothing attached yet: every call-log endpoint
    /// answers 503 until [`Admin::with_calls`] gives it a store.
    pub fn new(clock: Arc<dyn Clock>) -> Admin {
        Admin {
            calls: None,
            gateway: None,
            writer: None,
            spans: None,
            logging: None,
            token: None,
            clock,
        }
    }

    /// Reads calls from `store` (its own connection, not the writer's).
    pub fn with_calls(mut self, store: Box<dyn CallLog>) -> Admin {
        self.calls = Some(Arc::new(Mutex::new(store)));
        self
    }

    /// Reports the state of `gateway`.
    pub fn with_gateway(mut self, gateway: Arc<Gateway>) -> Admin {
        self.gateway = Some(gateway);
        self
    }

    /// Reports the writer's counters.
    pub fn with_writer(mut self, counters: WriterCounters) -> Admin {
        self.writer = Some(counters);
        self
    }

    /// Reports the OTLP span exporter's counters (`span_export` in
    /// `/api/v1/state`, `gatewise_otlp_*` in `/metrics`).
    pub fn with_span_export(mut self, counters: SpanExportReader) -> Admin {
        self.spans = Some(counters);
        self
    }

    /// Lets `/api/v1/logging` read and change the log filter.
    pub fn with_log_control(mut self, control: LogControl) -> Admin {
        self.logging = Some(control);
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request but
    /// `/live` and `/ready`.
    pub fn with_token(mut self, token: impl Into<String>) -> Admin {
        self.token = Some(Arc::from(token.into()));
        self
    }

    /// The routes.
    pub fn router(self) -> axum::Router {
        api::router(self)
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
