//! TLS for a port (rustls, with the ring provider): the certificate and key from PEM files,
//! checked at start with an error that names the cause, and reloaded without a restart.
//!
//! Certificates are renewed (Let's Encrypt every 60 to 90 days, a company CA yearly) by a tool
//! that replaces the files; the server picks them up on SIGHUP or by itself within
//! [`POLL_INTERVAL`] of a change. A reload that fails (a key that does not match, a file half
//! written) keeps the certificate in use and logs why, so a bad renewal never takes the port
//! down. Connections already open keep the certificate they were made with; new ones get the new.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How often the certificate files are looked at for a change.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The certificate chain and private key files of a port (`--tls-cert`, `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then the intermediates.
    pub cert: PathBuf,
    /// PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// Why a certificate cannot be used, in words that say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("{path} is not a PEM certificate file: {why}")]
    BadCertificate { path: String, why: String },
    #[error(
        "{path} holds no private key (expected PEM: -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY \
         or EC PRIVATE KEY): {why}"
    )]
    NoKey { path: String, why: String },
    #[error("the private key {key} does not belong to the certificate {cert}")]
    KeyMismatch { cert: String, key: String },
    #[error("the certificate {cert} or the key {key} cannot be used: {why}")]
    Unusable {
        cert: String,
        key: String,
        why: String,
    },
}

/// A port's TLS: the acceptor in use, replaced by a reload.
pub struct Tls {
    files: TlsFiles,
    acceptor: ArcSwap<TlsAcceptor>,
    /// The files' modification times and sizes when last loaded.
    seen: Mutex<Option<[(SystemTime, u64); 2]>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Loads and checks the files.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let seen = stamps(&files);
        let acceptor = acceptor(&files)?;
        Ok(Self {
            files,
            acceptor: ArcSwap::from_pointee(acceptor),
            seen: Mutex::new(seen),
        })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> Arc<TlsAcceptor> {
        self.acceptor.load_full()
    }

    /// Loads the files again; on failure the certificate in use stays, and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let seen = stamps(&self.files);
        let acceptor = acceptor(&self.files)?;
        self.acceptor.store(Arc::new(acceptor));
        *self.seen.lock() = seen;
        Ok(())
    }

    /// Reloads on SIGHUP and whenever the files change, until `shutdown`.
    pub async fn watch(self: Arc<Self>, what: &'static str, shutdown: CancellationToken) {
        let mut hangups = crate::sys::signals::hangups();
        loop {
            let hangup = tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL_INTERVAL) => false,
                () = crate::sys::signals::next(&mut hangups) => true,
            };
            let changed = stamps(&self.files);
            if !hangup && (changed.is_none() || changed == *self.seen.lock()) {
                continue;
            }
            match self.reload() {
                Ok(()) => tracing::info!(
                    port = what,
                    cert = %self.files.cert.display(),
                    reason = if hangup { "SIGHUP" } else { "the files changed" },
                    "TLS certificate reloaded"
                ),
                Err(e) => {
                    // Not again until the files change once more.
                    *self.seen.lock() = changed;
                    tracing::error!(
                        port = what,
                        error = %e,
                        "cannot reload the TLS certificate; the one in use stays"
                    );
                }
            }
        }
    }
}

/// Modification time and size of both files; `None` while one cannot be read.
fn stamps(files: &TlsFiles) -> Option<[(SystemTime, u64); 2]> {
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Some([stamp(&files.cert)?, stamp(&files.key)?])
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Reads and checks the certificate chain and key: an acceptor, or what is wrong.
fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_path = files.cert.display().to_string();
    let key_path = files.key.display().to_string();
    let chain = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert_path.clone(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|e| TlsError::NoKey {
        path: key_path.clone(),
        why: e.to_string(),
    })?;
    // ring rather than aws-lc-rs (which needs cmake to build); rustls marks ring's provider
    // deprecated for its lack of post-quantum key exchange, which clients do not need here.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Unusable {
            cert: cert_path.clone(),
            key: key_path.clone(),
            why: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: cert_path.clone(),
                key: key_path.clone(),
            },
            other => TlsError::Unusable {
                cert: cert_path.clone(),
                key: key_path.clone(),
                why: other.to_string(),
            },
        })?;
    // HTTP/1.1 only, as the plain ports (see `accept`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
