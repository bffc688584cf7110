//! The vendor service's endpoints: an account logs in, lists its licenses with their
//! activations, activates one for the server that signed an activation request, and deactivates
//! one (a transfer: the license moves to another server).

use std::net::SocketAddr;

use base64::{Engine, engine::general_purpose::STANDARD};

use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
};
use models::{
    ActivateRequest, Activated, Activation as ActivationModel, AuthUser, DeactivateRequest,
    Deactivated, ErrorCode, LoginAnswer, LoginRequest, RemoteLicense, RemoteLicenses, RemoteRules,
    ServerVersion, UserInfo, headers,
};
use time::OffsetDateTime;

use super::{
    catalog::Account,
    state::{REALM, VendorState},
};
use crate::{
    auth::{
        gate::attempt_keys,
        tokens::{new_token, principal_text, token_hash},
    },
    http::{
        AppError,
        extract::{Json, Path as PathParam},
    },
    licensing::{activation, anchors, file as license_file, receipt},
    store::{Activation, KeyCheck},
    sys::VERSION,
};

pub(super) async fn login(
    State(state): State<VendorState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<LoginRequest>,
) -> Result<axum::Json<LoginAnswer>, AppError> {
    let principal = principal_text(&request.principal);
    let keys = attempt_keys(&principal, peer.ip());
    let account = state.0.catalog.account(&principal).cloned();
    let hash = account.as_ref().map(|a| a.secret_hash.clone());
    let ok = state.0.gate.check(&keys, hash, &request.secret).await?;
    let Some(account) = account.filter(|_| ok) else {
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::LoginDenied,
            "login denied: unknown account or wrong secret",
        ));
    };
    let token = new_token()?;
    state
        .0
        .store
        .insert_token(
            &token_hash(&token),
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
            server_version: VERSION.to_owned(),
        },
    }))
}

/// The licensing token of a request, if it has one.
fn licensing_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(headers::LICENSING_TOKEN)
        .and_then(|v| v.to_str().ok())
}

/// The account a licensing token belongs to.
async fn account_of(state: &VendorState, headers: &HeaderMap) -> Result<Account, AppError> {
    let unauthenticated = || {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "no valid licensing token in X-Lic-Session-Id; log in first",
        )
    };
    let token = licensing_token(headers).ok_or_else(unauthenticated)?;
    let now = OffsetDateTime::now_utc();
    let idle = time::Duration::try_from(state.0.token_timeout).unwrap_or(time::Duration::MAX);
    let principal = state
        .0
        .store
        .use_token(&token_hash(token.trim()), now - idle, now)
        .await?
        .ok_or_else(unauthenticated)?;
    state
        .0
        .catalog
        .account(&principal)
        .cloned()
        .ok_or_else(unauthenticated)
}

pub(super) async fn logout(
    State(state): State<VendorState>,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    account_of(&state, &headers).await?;
    let token = licensing_token(&headers).unwrap_or_default();
    state
        .0
        .store
        .delete_token(&token_hash(token.trim()))
        .await?;
    Ok(axum::Json(serde_json::json!({})))
}

pub(super) async fn licenses(
    State(state): State<VendorState>,
    headers: HeaderMap,
) -> Result<axum::Json<RemoteLicenses>, AppError> {
    let account = account_of(&state, &headers).await?;
    let mut licenses = Vec::new();
    for entitlement in &account.entitlements {
        let activations: Vec<ActivationModel> = state
            .0
            .store
            .activations(&entitlement.key)
            .await?
            .into_iter()
            .map(|(server_id, activated)| ActivationModel {
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

pub(super) async fn activate(
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
            AppError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::LicenseKeyNotFound,
                format!("this account has no license {key}"),
            )
        })?;
    let (activation_request, signer) = activation::verify(request.request.as_bytes())
        .map_err(|e| AppError::bad_request(ErrorCode::ActivationRequestInvalid, e.to_string()))?;
    if let Some(ledger) = &activation_request.ledger {
        ledger.check().map_err(|why| {
            AppError::bad_request(
                ErrorCode::ActivationRequestInvalid,
                format!("the activation request's ledger head is refused: {why}"),
            )
        })?;
    }
    if let Some(network) = &activation_request.network {
        network
            .check(&activation_request.server_id, &signer)
            .map_err(|why| AppError::bad_request(ErrorCode::ActivationRequestInvalid, why))?;
        let members = network.members.len();
        if members > entitlement.network_members as usize {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                ErrorCode::ActivationLimit,
                format!(
                    "license {key} may be activated for failover networks of at most {} \
                     members; this one has {members}",
                    entitlement.network_members
                ),
            ));
        }
    }
    let server_id = activation_request.server_id.clone();
    let server_key = STANDARD.encode(signer.as_bytes());
    // A network whose members changed has another id: its activation takes over the one of the
    // network it grew out of (a majority of whose members it kept), not another place.
    let members = activation_request.members();
    if !members.is_empty() {
        let ids: Vec<&str> = members.iter().map(|(id, _)| *id).collect();
        if let Some(before) = state.0.store.network_predecessor(&key, &ids).await?
            && before != server_id
        {
            state.0.store.deactivate(&key, &before).await?;
            tracing::info!(key = %key, previous = %before, server_id = %server_id, "a failover network's activation moved to its new id (its members changed)");
        }
    }
    let license = entitlement.license_for(&server_id, OffsetDateTime::now_utc());
    let file = license_file::sign(&license, &state.0.key)?;
    match state
        .0
        .store
        .activate(&key, &server_id, &server_key, entitlement.servers, &file)
        .await?
    {
        Activation::Existing(file) | Activation::New(file) => {
            tracing::info!(key = %key, server_id = %server_id, account = %account.principal, "activated");
            if !members.is_empty() {
                state.0.store.record_network(&server_id, &members).await?;
            }
            if let Some(ledger) = &activation_request.ledger {
                anchors::record(
                    &state.0.store,
                    activation_request.head_owner(&signer),
                    &signer,
                    ledger,
                    "activation",
                    KeyCheck::Adopt,
                )
                .await?;
            }
            Ok(axum::Json(Activated { license_file: file }))
        }
        Activation::LimitReached { max } => Err(AppError::new(
            StatusCode::CONFLICT,
            ErrorCode::ActivationLimit,
            format!(
                "license {key} is already activated on {max} server(s), as many as it allows; \
                 ask the vendor to move it"
            ),
        )),
    }
}

/// Frees the activation of `key` on `server_id`, so the account can activate the license for
/// another server. The file that server has stays valid where it is: the account says it no
/// longer uses it (the machine was replaced, or its data directory moved), and the vendor's log
/// records who said so.
pub(super) async fn deactivate(
    State(state): State<VendorState>,
    headers: HeaderMap,
    PathParam((key, server_id)): PathParam<(String, String)>,
) -> Result<axum::Json<Deactivated>, AppError> {
    let account = account_of(&state, &headers).await?;
    if !account.entitlements.iter().any(|e| e.key == key) {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::LicenseKeyNotFound,
            format!("this account has no license {key}"),
        ));
    }
    if !state.0.store.deactivate(&key, &server_id).await? {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ActivationNotFound,
            format!("license {key} is not activated for server {server_id}"),
        ));
    }
    tracing::info!(key = %key, server_id = %server_id, account = %account.principal, "deactivated");
    Ok(axum::Json(Deactivated {
        key,
        server_id,
        removed_here: false,
    }))
}

/// Frees an activation against the server's signed deactivation receipt (`license deactivate`):
/// the transfer for a server that cannot reach the vendor. The receipt must be signed with the
/// key the server activated with, so knowing a server's id is not enough to free its place.
pub(super) async fn deactivate_with_receipt(
    State(state): State<VendorState>,
    headers: HeaderMap,
    Json(request): Json<DeactivateRequest>,
) -> Result<axum::Json<Deactivated>, AppError> {
    let account = account_of(&state, &headers).await?;
    let (receipt, signer) = receipt::verify(request.receipt.as_bytes())
        .map_err(|e| AppError::bad_request(ErrorCode::DeactivationReceiptInvalid, e.to_string()))?;
    let (key, server_id) = (receipt.key, receipt.server_id);
    if !account.entitlements.iter().any(|e| e.key == key) {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::LicenseKeyNotFound,
            format!("this account has no license {key}"),
        ));
    }
    let not_found = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ActivationNotFound,
            format!("license {key} is not activated for server {server_id}"),
        )
    };
    let recorded = state.0.store.activation_key(&key, &server_id).await?;
    let Some(recorded) = recorded else {
        return Err(not_found());
    };
    if recorded.as_deref() != Some(STANDARD.encode(signer.as_bytes()).as_str()) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ReceiptKeyMismatch,
            format!(
                "the receipt is not signed with the key server {server_id} activated {key} with; \
                 only that server can give it back"
            ),
        ));
    }
    if !state.0.store.deactivate(&key, &server_id).await? {
        return Err(not_found());
    }
    tracing::info!(key = %key, server_id = %server_id, account = %account.principal, "deactivated with a receipt");
    Ok(axum::Json(Deactivated {
        key,
        server_id,
        removed_here: false,
    }))
}
