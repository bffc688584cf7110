//! `license-server vendor serve`: the vendor's licensing service. It knows the accounts of the
//! vendor's customers and the licenses (entitlements) each owns, from a catalog file, and issues
//! signed license files bound to the servers they are activated on.
//!
//! The catalog is read once at start and checked whole: a typo in it must stop the service, not
//! surface as a refused activation at a customer's. Activations are kept in the service's own
//! store (`--data-dir`), so an activation limit holds across restarts and activating the same key
//! for the same server again returns the very same file.

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use models::{
    ActivateRequest, Activated, Activation, AuthUser, License, LoginAnswer, LoginRequest,
    ProductRule, RemoteLicense, RemoteLicenses, RemoteRules, Rules, ServerVersion, UserInfo,
};
use serde::Deserialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    activation,
    api::with_common_layers,
    auth::{self, LoginGate},
    error::AppError,
    extract::{Json, Path as PathParam},
    keys::KeyPair,
    license_file,
    vendor_store::{self, VendorStore},
};

/// The header that carries a licensing token (the spec's name for the vendor's session).
pub const TOKEN_HEADER: &str = "x-lic-session-id";
pub const REALM: &str = "vendor";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "account", default)]
    pub accounts: Vec<Account>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub principal: String,
    /// argon2id PHC string, from `license-server vendor hash-secret`.
    pub secret_hash: String,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub fullname: Option<String>,
    #[serde(rename = "entitlement", default)]
    pub entitlements: Vec<Entitlement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    pub key: String,
    pub serial_number: u64,
    pub max_users: Option<u32>,
    /// RFC 3339.
    pub expires: Option<String>,
    /// How many servers it may be activated on.
    #[serde(default = "one")]
    pub servers: u32,
    #[serde(rename = "product")]
    pub products: Vec<ProductRule>,
}

fn one() -> u32 {
    1
}

impl Entitlement {
    fn expires(&self) -> Option<OffsetDateTime> {
        self.expires
            .as_deref()
            .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
    }

    fn license_for(&self, server_id: &str, now: OffsetDateTime) -> License {
        License {
            key: self.key.clone(),
            server_id: server_id.to_owned(),
            rules: Rules {
                serial_number: self.serial_number,
                issued: now.replace_nanosecond(0).unwrap_or(now),
                expires: self.expires(),
                max_users: self.max_users,
                products: self.products.clone(),
            },
        }
    }
}

impl Catalog {
    /// Reads and checks a catalog: unique principals and keys, valid secret hashes, and every
    /// entitlement a license the servers would accept.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the catalog {}", path.display()))?;
        let catalog: Self = toml::from_str(&text)
            .with_context(|| format!("the catalog {} is not valid", path.display()))?;
        let mut principals = HashSet::new();
        let mut keys = HashSet::new();
        for account in &catalog.accounts {
            if !principals.insert(account.principal.as_str()) {
                bail!(
                    "catalog: the account {:?} is listed twice",
                    account.principal
                );
            }
            if argon2::password_hash::PasswordHash::new(&account.secret_hash).is_err() {
                bail!(
                    "catalog: the secret_hash of {:?} is not a password hash; make one with \
                     `license-server vendor hash-secret`",
                    account.principal
                );
            }
            for entitlement in &account.entitlements {
                if !keys.insert(entitlement.key.as_str()) {
                    bail!(
                        "catalog: the license key {:?} is listed twice",
                        entitlement.key
                    );
                }
                if entitlement.expires.is_some() && entitlement.expires().is_none() {
                    bail!(
                        "catalog: {:?}: expires is not an RFC 3339 time",
                        entitlement.key
                    );
                }
                if entitlement.servers == 0 {
                    bail!("catalog: {:?}: servers must be at least 1", entitlement.key);
                }
                // A sample server id: the rules are what is checked here.
                let sample = entitlement.license_for("00", OffsetDateTime::UNIX_EPOCH);
                license_file::check_rules(&sample)
                    .with_context(|| format!("catalog: license {:?}", entitlement.key))?;
            }
        }
        Ok(catalog)
    }

    fn account(&self, principal: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.principal == principal)
    }
}

#[derive(Debug)]
struct Inner {
    catalog: Catalog,
    key: KeyPair,
    store: VendorStore,
    gate: LoginGate,
    token_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct VendorState(Arc<Inner>);

#[derive(Debug)]
pub struct VendorConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub key: PathBuf,
    pub catalog: PathBuf,
    pub data_dir: PathBuf,
    pub token_timeout: Duration,
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
    crate::data_dir::create_private_dir(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let store = VendorStore::open(&config.data_dir.join("vendor.db")).await?;
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
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
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
            .route("/vendor/v1/auth", post(login).delete(logout))
            .route("/vendor/v1/licenses", get(licenses))
            .route("/vendor/v1/licenses/{key}/activations", post(activate))
            .route(
                "/health",
                get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
            )
            .with_state(state),
    )
}

async fn login(
    State(state): State<VendorState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<LoginRequest>,
) -> Result<axum::Json<LoginAnswer>, AppError> {
    let principal = auth::principal_text(&request.principal);
    let keys = [
        format!("principal:{principal}"),
        format!("peer:{}", peer.ip()),
    ];
    let account = state.0.catalog.account(&principal).cloned();
    let hash = account.as_ref().map(|a| a.secret_hash.clone());
    let ok = state.0.gate.check(&keys, hash, &request.secret).await?;
    let Some(account) = account.filter(|_| ok) else {
        return Err(AppError::status(
            StatusCode::UNAUTHORIZED,
            "LOGIN_DENIED",
            "login denied: unknown account or wrong secret",
        ));
    };
    let token = auth::new_token()?;
    state
        .0
        .store
        .insert_token(
            &auth::token_hash(&token),
            &account.principal,
            OffsetDateTime::now_utc(),
        )
        .await?;
    Ok(axum::Json(LoginAnswer {
        token,
        timeout: u64::try_from(state.0.token_timeout.as_millis()).unwrap_or(u64::MAX),
        user: AuthUser {
            id: account.principal.clone(),
            realm: REALM.to_owned(),
            info: UserInfo {
                firstname: account.firstname.clone(),
                lastname: account.lastname.clone(),
                fullname: account.fullname.clone(),
            },
        },
        properties: serde_json::Map::new(),
        permissions: Vec::new(),
        status: ServerVersion {
            server_version: crate::VERSION.to_owned(),
        },
    }))
}

/// The account a licensing token belongs to.
async fn account_of(state: &VendorState, headers: &HeaderMap) -> Result<Account, AppError> {
    let unauthenticated = || {
        AppError::status(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "no valid licensing token in X-Lic-Session-Id; log in first",
        )
    };
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthenticated)?;
    let now = OffsetDateTime::now_utc();
    let idle = time::Duration::try_from(state.0.token_timeout).unwrap_or(time::Duration::MAX);
    let principal = state
        .0
        .store
        .use_token(&auth::token_hash(token.trim()), now - idle, now)
        .await?
        .ok_or_else(unauthenticated)?;
    state
        .0
        .catalog
        .account(&principal)
        .cloned()
        .ok_or_else(unauthenticated)
}

async fn logout(
    State(state): State<VendorState>,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    account_of(&state, &headers).await?;
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    state
        .0
        .store
        .delete_token(&auth::token_hash(token.trim()))
        .await?;
    Ok(axum::Json(serde_json::json!({})))
}

async fn licenses(
    State(state): State<VendorState>,
    headers: HeaderMap,
) -> Result<axum::Json<RemoteLicenses>, AppError> {
    let account = account_of(&state, &headers).await?;
    let mut licenses = Vec::new();
    for entitlement in &account.entitlements {
        let activations: Vec<Activation> = state
            .0
            .store
            .activations(&entitlement.key)
            .await?
            .into_iter()
            .map(|(server_id, activated)| Activation {
                server_id,
                activated,
            })
            .collect();
        licenses.push(RemoteLicense {
            key: entitlement.key.clone(),
            server_id: match activations.as_slice() {
                [only] => Some(only.server_id.clone()),
                _ => None,
            },
            rules: RemoteRules {
                serial_number: entitlement.serial_number,
                expires: entitlement.expires.clone(),
                max_users: entitlement.max_users,
                products: entitlement.products.clone(),
            },
            activations,
            max_activations: entitlement.servers,
        });
    }
    Ok(axum::Json(RemoteLicenses { licenses }))
}

async fn activate(
    State(state): State<VendorState>,
    headers: HeaderMap,
    PathParam(key): PathParam<String>,
    Json(request): Json<ActivateRequest>,
) -> Result<axum::Json<Activated>, AppError> {
    let account = account_of(&state, &headers).await?;
    let entitlement = account
        .entitlements
        .iter()
        .find(|e| e.key == key)
        .ok_or_else(|| {
            AppError::status(
                StatusCode::NOT_FOUND,
                "LICENSE_KEY_NOT_FOUND",
                format!("this account has no license {key}"),
            )
        })?;
    let (activation_request, _) = activation::verify(request.request.as_bytes())
        .map_err(|e| AppError::bad_request("ACTIVATION_REQUEST_INVALID", e.to_string()))?;
    let server_id = activation_request.server_id;
    let license = entitlement.license_for(&server_id, OffsetDateTime::now_utc());
    let file = license_file::sign(&license, &state.0.key)
        .map_err(|e| AppError::bad_request(e.code(), e.to_string()))?;
    match state
        .0
        .store
        .activate(&key, &server_id, entitlement.servers, &file)
        .await?
    {
        vendor_store::Activation::Existing(file) | vendor_store::Activation::New(file) => {
            tracing::info!(key = %key, server_id = %server_id, account = %account.principal, "activated");
            Ok(axum::Json(Activated { license_file: file }))
        }
        vendor_store::Activation::LimitReached { max } => Err(AppError::status(
            StatusCode::CONFLICT,
            "ACTIVATION_LIMIT",
            format!(
                "license {key} is already activated on {max} server(s), as many as it allows; \
                 ask the vendor to move it"
            ),
        )),
    }
}

/// Reads a secret (no echo on a terminal, else the first line of standard input) and hashes it
/// for the catalog.
pub fn hash_secret_from_stdin() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let secret = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("secret: ")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if secret.is_empty() {
        bail!("the secret is empty");
    }
    auth::hash_password(&secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_catalog_loads_and_its_sample_account_has_the_documented_secret() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog.toml");
        let catalog = Catalog::load(&path).unwrap();
        let demo = catalog.account("demo").unwrap();
        assert!(auth::verify_password(&demo.secret_hash, "demo-secret"));
        let keys: Vec<&str> = demo.entitlements.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["DEMO-PDFTOOLBOX-10", "DEMO-CREDITS"]);
    }

    #[test]
    fn a_catalog_mistake_stops_the_service_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        let hash = auth::hash_password("x-secret").unwrap();
        let entitlement = |key: &str| {
            format!(
                "[[account.entitlement]]\nkey = \"{key}\"\nserial_number = 1\n\
                 [[account.entitlement.product]]\nproduct_id = 1\nmajor_version = 0\n\
                 product = \"P\"\nruncount = 1\ncredits = 0\npostpay = false\n"
            )
        };
        let cases = [
            (
                "[[account]]\nprincipal = \"a\"\nsecret_hash = \"plain\"\n".to_owned(),
                "not a password hash",
            ),
            (
                format!(
                    "[[account]]\nprincipal = \"a\"\nsecret_hash = \"{hash}\"\n{}{}",
                    entitlement("K"),
                    entitlement("K")
                ),
                "listed twice",
            ),
            (
                format!(
                    "[[account]]\nprincipal = \"a\"\nsecret_hash = \"{hash}\"\n{}",
                    entitlement("bad key")
                ),
                "license key",
            ),
            (
                "[[account]]\nprincipal = \"a\"\nsecret = \"x\"\n".to_owned(),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Catalog::load(&path).unwrap_err());
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
