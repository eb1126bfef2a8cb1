//! TLS termination with rustls (aws-lc-rs): several certificates chosen by
//! SNI, HTTP/2 and HTTP/1.1 offered by ALPN, and the files reloaded when
//! they change on disk, without a restart and without dropping connections.

use arc_swap::ArcSwap;
use gatewise_config::model::{CertificateFiles, TlsConfig};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why the certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key does not match the certificate, or is of an unsupported type.
    #[error("{path}: {message}")]
    Key {
        /// The key file.
        path: String,
        /// What rustls said.
        message: String,
    },
}

/// One loaded certificate.
#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The leaf, kept to match SNI names against its subject alternative names.
    leaf: CertificateDer<'static>,
}

/// The certificates currently served; the first is the default.
#[derive(Debug)]
pub struct CertStore {
    files: Vec<CertificateFiles>,
    loaded: ArcSwap<Vec<Loaded>>,
    mtimes: std::sync::Mutex<Vec<Option<SystemTime>>>,
}

fn load_one(files: &CertificateFiles) -> Result<Loaded, TlsError> {
    let cert_path = files.cert.display().to_string();
    let key_path = files.key.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| TlsError::File {
            path: cert_path.clone(),
            message: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File {
            path: cert_path.clone(),
            message: format!("not a PEM certificate chain: {e}"),
        })?;
    let leaf = chain.first().cloned().ok_or_else(|| TlsError::File {
        path: cert_path.clone(),
        message: "no CERTIFICATE block found".into(),
    })?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        path: key_path.clone(),
        message: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| TlsError::Key {
        path: key_path,
        message: e.to_string(),
    })?;
    Ok(Loaded {
        key: Arc::new(certified),
        leaf,
    })
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl CertStore {
    /// Loads every certificate of `config`; any failure is an error (the
    /// gateway does not start with a broken certificate).
    pub fn load(config: &TlsConfig) -> Result<CertStore, TlsError> {
        let loaded = config
            .certificates
            .iter()
            .map(load_one)
            .collect::<Result<Vec<_>, _>>()?;
        let mtimes = config
            .certificates
            .iter()
            .map(|f| mtime(&f.cert).max(mtime(&f.key)))
            .collect();
        Ok(CertStore {
            files: config.certificates.clone(),
            loaded: ArcSwap::from_pointee(loaded),
            mtimes: std::sync::Mutex::new(mtimes),
        })
    }

    /// Reloads when a file changed since the last load. A broken new file
    /// keeps the old certificates (and the error is returned for the log).
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now: Vec<Option<SystemTime>> = self
            .files
            .iter()
            .map(|f| mtime(&f.cert).max(mtime(&f.key)))
            .collect();
        let Ok(mut seen) = self.mtimes.lock() else {
            return Ok(false);
        };
        if *seen == now {
            return Ok(false);
        }
        let loaded = self
            .files
            .iter()
            .map(load_one)
            .collect::<Result<Vec<_>, _>>();
        // Remember the new times either way, so a broken file is reported once.
        *seen = now;
        self.loaded.store(Arc::new(loaded?));
        Ok(true)
    }

    /// A rustls server configuration offering h2 and http/1.1.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// Polls the files every `every` and reloads on change, until the task is dropped.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let me = Arc::clone(&self);
            // File reads and PEM parsing are blocking work.
            match tokio::task::spawn_blocking(move || me.reload_if_changed()).await {
                Ok(Ok(true)) => tracing::info!("TLS certificates reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::error!(
                    "TLS certificate reload failed; the previous certificates stay: {e}"
                ),
                Err(e) => tracing::error!("TLS reload task failed: {e}"),
            }
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.loaded.load();
        if let Some(sni) = hello.server_name()
            && let Ok(name) = ServerName::try_from(sni)
        {
            for l in loaded.iter() {
                let fits = webpki::EndEntityCert::try_from(&l.leaf)
                    .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok());
                if fits {
                    return Some(Arc::clone(&l.key));
                }
            }
        }
        loaded.first().map(|l| Arc::clone(&l.key))
    }
}
