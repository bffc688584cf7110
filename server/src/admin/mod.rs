//! The licensing admin REST API on the API port: login, the local license files, offline
//! activation requests, licensed users, force-releasing a session, the ledger's export, and the vendor licensing
//! service through `remote/...`. The rules live in the domain (`auth`, `licensing`, `engine`);
//! these handlers translate.
//!
//! - [`extract`]: who is asking ([`extract::Viewer`], [`extract::Editor`]), from the session token;
//! - [`login`], [`licenses`], [`users`], [`sessions`], [`ledger`]: the endpoints, by what they
//!   manage;
//! - [`remote`]: the calls this server makes to the vendor service for an administrator.

pub mod extract;
pub mod ledger;
pub mod licenses;
pub mod login;
pub mod network;
pub mod remote;
pub mod sessions;
pub mod usage;
pub mod users;

use axum::{
    Router,
    routing::{delete, get, post},
};

use crate::app::AppState;

/// The largest request body the admin API reads: a license file is a few kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/server/auth", post(login::login).delete(login::logout))
        .route(
            "/server/manage/licenses/active",
            get(licenses::active_license).delete(licenses::remove_key_active),
        )
        .route("/server/manage/licenses", get(licenses::all_licenses))
        .route(
            "/server/manage/licenses/history",
            get(licenses::license_history).delete(licenses::remove_key_history),
        )
        .route(
            "/server/manage/licenses/{key}",
            delete(licenses::remove_license),
        )
        .route(
            "/server/manage/license/install",
            post(licenses::install_license),
        )
        .route(
            "/server/manage/license/create",
            get(licenses::activation_request),
        )
        .route(
            "/server/manage/license/users",
            get(users::licensed_users).delete(users::clear_licensed_users),
        )
        .route(
            "/server/manage/license/users/{realm}/{principal}",
            delete(users::clear_licensed_user),
        )
        .route(
            "/server/manage/sessions/{session_id}",
            delete(sessions::release_session),
        )
        .route("/server/manage/ledger/export", get(ledger::export))
        .route("/server/manage/usage", get(usage::usage))
        .route("/server/manage/network", get(network::network))
        .route(
            "/server/manage/network/members",
            axum::routing::put(network::change_members),
        )
        .merge(remote::routes())
}
