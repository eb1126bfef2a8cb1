//! TLS for the live doctor: rustls (aws-lc-rs) with the platform's trust
//! roots (rustls-native-certs: the system store is where a company installs
//! its TLS-inspection CA, so the doctor trusts what `curl` on the same
//! machine trusts) plus an optional extra CA file, and the classification of
//! a failed handshake into the core's [`TlsFailure`].
//!
//! The verifier records the certificates the server presented before
//! delegating to webpki, so a refusal can name the issuer.

use crate::ProbeError;
use crate::der;
use gatewise_core::diagnose::transport::TlsFailure;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::{Arc, Mutex};

/// Where trust comes from.
#[derive(Debug, Clone)]
pub struct Trust {
    roots: Arc<RootCertStore>,
    /// How many platform roots were loaded.
    pub platform_roots: usize,
    /// How many extra CA certificates were added.
    pub extra: usize,
}

impl Trust {
    /// The platform's roots (unless `platform` is false) plus the
    /// certificates of `extra_pem` (a PEM file's bytes).
    pub fn new(platform: bool, extra_pem: Option<&[u8]>) -> Result<Trust, ProbeError> {
        let mut roots = RootCertStore::empty();
        let mut platform_roots = 0;
        if platform {
            // Unreadable individual certificates are skipped, as curl does.
            let loaded = rustls_native_certs::load_native_certs();
            for cert in loaded.certs {
                if roots.add(cert).is_ok() {
                    platform_roots += 1;
                }
            }
        }
        let mut extra = 0;
        if let Some(pem) = extra_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ProbeError::CaFile(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| ProbeError::CaFile(e.to_string()))?;
                extra += 1;
            }
            if extra == 0 {
                return Err(ProbeError::CaFile("no CERTIFICATE block found".into()));
            }
        }
        Ok(Trust {
            roots: Arc::new(roots),
            platform_roots,
            extra,
        })
    }

    /// A client configuration whose verifier records what the server
    /// presented into `seen`.
    pub(crate) fn client_config(
        &self,
        seen: Arc<Mutex<Vec<CertificateDer<'static>>>>,
    ) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(&self.roots), provider.clone())
                .build()
                .map_err(|e| {
                    format!("no trusted root certificates ({e}); give a CA file with --ca-file")
                })?;
        let verifier = Arc::new(Recording { inner, seen });
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// webpki's verifier, recording the presented chain first.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Vec<CertificateDer<'static>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
            seen.push(end_entity.clone().into_owned());
            seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn secs(t: &UnixTime) -> Option<i64> {
    i64::try_from(t.as_secs()).ok()
}

/// Classifies a failed handshake. `seen` is the chain the server presented
/// (empty when it presented none).
pub(crate) fn classify(err: &std::io::Error, seen: &[CertificateDer<'static>]) -> TlsFailure {
    let leaf = seen.first().and_then(|c| der::names(c.as_ref()));
    let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        let detail = match err.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the handshake (is this port speaking TLS?)"
                    .to_string()
            }
            _ => format!("handshake failed: {err}"),
        };
        return TlsFailure::Other { detail };
    };
    let rustls::Error::InvalidCertificate(cert_err) = tls else {
        return TlsFailure::Other {
            detail: tls.to_string(),
        };
    };
    match cert_err {
        CertificateError::Expired => TlsFailure::Expired {
            not_after: None,
            now: None,
        },
        CertificateError::ExpiredContext { time, not_after } => TlsFailure::Expired {
            not_after: secs(not_after),
            now: secs(time),
        },
        CertificateError::NotValidYet => TlsFailure::NotYetValid {
            not_before: None,
            now: None,
        },
        CertificateError::NotValidYetContext { time, not_before } => TlsFailure::NotYetValid {
            not_before: secs(not_before),
            now: secs(time),
        },
        CertificateError::NotValidForName => TlsFailure::HostnameMismatch {
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext { presented, .. } => {
            TlsFailure::HostnameMismatch {
                presented: presented.clone(),
            }
        }
        CertificateError::UnknownIssuer | CertificateError::BadSignature => match leaf {
            Some(n) if n.self_issued && seen.len() == 1 => TlsFailure::SelfSigned {
                subject: Some(n.subject),
            },
            Some(n) => TlsFailure::UnknownIssuer {
                issuer: Some(n.issuer),
                subject: Some(n.subject),
            },
            None => TlsFailure::UnknownIssuer {
                issuer: None,
                subject: None,
            },
        },
        other => TlsFailure::Other {
            detail: format!("invalid certificate: {other:?}"),
        },
    }
}
