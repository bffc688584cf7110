//! `license-vendor serve`: the vendor's licensing service. It knows the accounts of the
//! vendor's customers and the licenses (entitlements) each owns, from a [`catalog`] file, and
//! issues signed license files bound to the servers they are activated on ([`handlers`]).
//!
//! Activations are kept in the service's own
//! store (`--data-dir`), so an activation limit holds across restarts and activating the same key
//! for the same server again returns the very same file. So are the ledger heads servers report
//! ([`heads`]), checked against each other so that a server whose history was rewritten shows.

pub mod catalog;
pub mod handlers;
pub mod heads;
pub mod state;

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use axum::{
    Router,
    routing::{get, post},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::{
    catalog::Catalog,
    state::{Inner, VendorState},
};
use crate::{
    auth::LoginGate,
    http::{
        accept::{self, ConnectionLimits},
        layers::with_common_layers,
        tls::{Tls, TlsFiles},
    },
    licensing::keys::KeyPair,
    store::VendorStore,
    sys::data_dir::create_private_dir,
};

#[derive(Debug)]
pub struct VendorConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub key: PathBuf,
    pub catalog: PathBuf,
    pub data_dir: PathBuf,
    pub token_timeout: Duration,
    /// HTTPS with this certificate and key (`--tls-cert`, `--tls-key`); plain HTTP without.
    pub tls: Option<TlsFiles>,
}

/// A started vendor service.
#[derive(Debug)]
pub struct RunningVendor {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: VendorStore,
}

impl RunningVendor {
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut task = self.task;
        tokio::select! {
            () = signal => {}
            result = &mut task => { result??; bail!("the vendor service stopped unexpectedly") }
        }
        self.shutdown.cancel();
        task.await??;
        self.store.close().await;
        Ok(())
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.run_until(std::future::ready(())).await
    }
}

pub async fn start(config: VendorConfig) -> anyhow::Result<RunningVendor> {
    let catalog = Catalog::load(&config.catalog)?;
    let key = KeyPair::load(&config.key)?;
    create_private_dir(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let store = VendorStore::open(&config.data_dir.join(VendorStore::FILE)).await?;
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (choose another with --port)"))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        addr = %addr,
        accounts = catalog.accounts.len(),
        key_id = %key.key_id(),
        "vendor licensing service ready"
    );
    let state = VendorState(Arc::new(Inner {
        catalog,
        key,
        store: store.clone(),
        gate: LoginGate::default(),
        token_timeout: config.token_timeout,
    }));
    let shutdown = CancellationToken::new();
    let tls = match config.tls {
        Some(files) => {
            let tls = Arc::new(Tls::load(files)?);
            tokio::spawn(tls.clone().watch("vendor service", shutdown.clone()));
            Some(tls)
        }
        None => None,
    };
    let task = tokio::spawn(accept::serve(
        listener,
        router(state),
        ConnectionLimits::default(),
        tls,
        shutdown.clone(),
    ));
    Ok(RunningVendor {
        addr,
        shutdown,
        task,
        store,
    })
}

pub fn router(state: VendorState) -> Router {
    with_common_layers(
        Router::new()
            .route(
                "/vendor/v1/auth",
                post(handlers::login).delete(handlers::logout),
            )
            .route("/vendor/v1/licenses", get(handlers::licenses))
            .route(
                "/vendor/v1/licenses/{key}/activations",
                post(handlers::activate),
            )
            .route(
                "/vendor/v1/licenses/{key}/activations/{server_id}",
                axum::routing::delete(handlers::deactivate),
            )
            .route(
                "/vendor/v1/deactivations",
                post(handlers::deactivate_with_receipt),
            )
            .route("/vendor/v1/ledger-reports", post(heads::ledger_report))
            .route(
                "/health",
                get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
            )
            .with_state(state),
    )
}
