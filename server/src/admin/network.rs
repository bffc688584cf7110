//! The failover network in the admin API: its members (`GET /server/manage/network`), and
//! changing them while it serves (`PUT /server/manage/network/members`), which any member takes
//! and the coordinator carries out (see `failover::membership`).

use std::time::Duration;

use axum::extract::State;
use models::{ApiError, MAX_MEMBER_TOKEN, MAX_NETWORK_MEMBERS, NetworkMembersRequest, NetworkView};

use super::extract::{Editor, Refused, SessionToken, Viewer};
use crate::{
    app::AppState,
    failover::{
        calls::CallFailure,
        config::{ConfigError, NetworkConfig},
        membership::{CATCH_UP_WAIT, ChangeError, MembersChange},
        network::MEMBERS,
    },
    http::{AppError, documented::JsonRefused, extract::Json},
};

/// What the network calls answer on a server that is no network's member.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "a description for the OpenAPI documents, never built"
)]
enum NotANetwork {
    /// NOT_A_NETWORK
    #[response(status = 404)]
    NotANetwork(ApiError),
}

/// The failover network this server is a member of: its id, its coordinator, its members.
#[utoipa::path(
    get, path = "/server/manage/network", tag = "network",
    params(SessionToken),
    responses(
        (status = 200, body = NetworkView),
        Refused,
        NotANetwork,
    )
)]
pub async fn network(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<axum::Json<NetworkView>, AppError> {
    Ok(axum::Json(
        state.network_view().ok_or(ChangeError::NotANetwork)?,
    ))
}

/// Makes these the network's members: the ones that stay, and new ones (each started with
/// `network join` and the same list), which catch up before they count. The network's id changes
/// with its members: licenses bound to the id before count for a grace period.
#[utoipa::path(
    put, path = "/server/manage/network/members", tag = "network",
    params(SessionToken),
    request_body = NetworkMembersRequest,
    responses(
        (status = 200, description = "The network with its new members", body = NetworkView),
        (status = 400, description = "NETWORK_MEMBERS_INVALID: a member that is not HOST:PORT=TOKEN, one listed twice, none kept, or more than 7", body = ApiError),
        (status = 409, description = "NETWORK_CHANGE_FAILED: a new member did not catch up (is it running, with `network join`?), or the change was not committed", body = ApiError),
        (status = 503, description = "NO_QUORUM: no coordinator", body = ApiError),
        Refused,
        NotANetwork,
        JsonRefused,
    )
)]
pub async fn change_members(
    State(state): State<AppState>,
    Editor(admin): Editor,
    Json(request): Json<NetworkMembersRequest>,
) -> Result<axum::Json<NetworkView>, AppError> {
    let network = state.network.as_ref().ok_or(ChangeError::NotANetwork)?;
    let count = request.members.len();
    if !(1..=MAX_NETWORK_MEMBERS).contains(&count) {
        return Err(ChangeError::List(ConfigError::Count(count)).into());
    }
    if let Some(long) = request
        .members
        .iter()
        .find(|m| m.chars().count() > MAX_MEMBER_TOKEN)
    {
        return Err(ChangeError::List(ConfigError::Token(long.chars().take(64).collect())).into());
    }
    let list = NetworkConfig::from_tokens(&request.members).map_err(ChangeError::from)?;
    match network.coordinator() {
        Some(coordinator) if coordinator == network.me => {
            state.change_members(&list, &admin.actor()).await?;
        }
        Some(coordinator) => {
            let change = MembersChange {
                members: request.members,
                by: admin.actor(),
            };
            let body = serde_json::to_vec(&change).map_err(anyhow::Error::from)?;
            let wait = CATCH_UP_WAIT + Duration::from_secs(60);
            match network.call(coordinator, MEMBERS, body, wait).await {
                Ok(_) => {}
                Err(CallFailure::Refused { status, body, .. }) => {
                    let answer: Result<ApiError, _> = serde_json::from_str(&body);
                    return Err(match answer {
                        Ok(answer) => AppError::new(
                            axum::http::StatusCode::from_u16(status)
                                .unwrap_or(axum::http::StatusCode::CONFLICT),
                            models::ErrorCode::parse(&answer.error.code)
                                .unwrap_or(models::ErrorCode::NetworkChangeFailed),
                            answer.error.message,
                        ),
                        Err(_) => ChangeError::from_coordinator(body).into(),
                    });
                }
                Err(_) => return Err(ChangeError::NotCoordinator.into()),
            }
        }
        None => return Err(ChangeError::NotCoordinator.into()),
    }
    Ok(axum::Json(
        state.network_view().ok_or(ChangeError::NotANetwork)?,
    ))
}
