//! What a reload may not change: the settings of [`StaticConfig`].

use crate::model::StaticConfig;

/// The settings that differ between two static configurations, named as in
/// the file (`server.listen`, `server.tls`, ...). A hot reload refuses a new
/// file when this is not empty: those settings only take effect on restart.
pub fn restart_required(old: &StaticConfig, new: &StaticConfig) -> Vec<&'static str> {
    // Destructured so that a new field fails to compile until it is listed.
    let StaticConfig {
        listen,
        tls,
        header_read_timeout,
        max_header_bytes,
        shutdown_grace,
        call_log,
        admin,
        telemetry,
    } = old;
    let mut changed = Vec::new();
    if *listen != new.listen {
        changed.push("server.listen");
    }
    if *tls != new.tls {
        changed.push("server.tls");
    }
    if *header_read_timeout != new.header_read_timeout {
        changed.push("server.header_read_timeout");
    }
    if *max_header_bytes != new.max_header_bytes {
        changed.push("server.max_header_bytes");
    }
    if *shutdown_grace != new.shutdown_grace {
        changed.push("server.shutdown_grace");
    }
    if *call_log != new.call_log {
        changed.push("call_log");
    }
    if *admin != new.admin {
        changed.push("admin");
    }
    if *telemetry != new.telemetry {
        changed.push("telemetry");
    }
    changed
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{CertificateFiles, TlsConfig};

    fn base() -> StaticConfig {
        StaticConfig {
            listen: "127.0.0.1:8080".parse().unwrap(),
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(30),
            call_log: crate::model::CallLogConfig::default(),
            admin: crate::model::AdminConfig::default(),
            telemetry: crate::model::TelemetryConfig::default(),
        }
    }

    #[test]
    fn nothing_changed() {
        assert!(restart_required(&base(), &base()).is_empty());
    }

    #[test]
    fn every_changed_field_is_named_in_file_terms() {
        let new = StaticConfig {
            listen: "0.0.0.0:8443".parse().unwrap(),
            tls: Some(TlsConfig {
                certificates: vec![CertificateFiles {
                    cert: "a.pem".into(),
                    key: "a.key".into(),
                }],
            }),
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 32 * 1024,
            shutdown_grace: Duration::from_secs(10),
            call_log: crate::model::CallLogConfig::disabled(),
            admin: crate::model::AdminConfig::disabled(),
            telemetry: crate::model::TelemetryConfig {
                otlp: Some(crate::model::OtlpConfig {
                    traces_url: "http://127.0.0.1:4318/v1/traces".into(),
                    headers: Vec::new(),
                    timeout: Duration::from_secs(1),
                    service_name: "gatewise".into(),
                    sample_ratio: 1.0,
                    queue: 1,
                }),
            },
        };
        assert_eq!(
            restart_required(&base(), &new),
            [
                "server.listen",
                "server.tls",
                "server.header_read_timeout",
                "server.max_header_bytes",
                "server.shutdown_grace",
                "call_log",
                "admin",
                "telemetry"
            ]
        );
        let only_grace = StaticConfig {
            shutdown_grace: Duration::from_secs(1),
            ..base()
        };
        assert_eq!(
            restart_required(&base(), &only_grace),
            ["server.shutdown_grace"]
        );
    }
}
