//! The licensing admin API (`shared/spec/licensing-api.md`): login, the license representation
//! wrappers, licensed users. Field names are the spec's, camelCase where it says so.

use serde::{Deserialize, Serialize};

use crate::License;

/// `POST /server/auth`. `principal` and `secret` may be any JSON value (a string, or an object
/// such as `{"name", "domain"}` for other realms); the realm `local` takes strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub principal: serde_json::Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub secret: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
}

/// Answer of a successful login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginAnswer {
    /// The session token (a UUID) for `X-Ak-Session-Id`.
    pub token: String,
    /// Idle timeout of the token in milliseconds, refreshed by every request that uses it.
    pub timeout: u64,
    pub user: AuthUser,
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// `{scope}.VIEW_LICENSE`, `{scope}.EDIT_LICENSE`.
    pub permissions: Vec<String>,
    pub status: ServerVersion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthUser {
    pub id: String,
    pub realm: String,
    pub info: UserInfo,
}

/// Present only when the account has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fullname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerVersion {
    #[serde(rename = "server-version")]
    pub server_version: String,
}

/// `{"license": {...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenseAnswer {
    pub license: License,
}

/// What `POST /server/manage/license/install` answers: `{"license": {...}, "already_installed"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallAnswer {
    pub license: License,
    /// The very same file was installed before: nothing changed.
    pub already_installed: bool,
}

/// `{"license": {"numAuthenticatedUsers", "authenticatedUsers"?}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicensedUsersAnswer {
    pub license: LicensedUsers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicensedUsers {
    #[serde(rename = "numAuthenticatedUsers")]
    pub num_authenticated_users: u64,
    #[serde(
        rename = "authenticatedUsers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub authenticated_users: Option<Vec<LicensedUser>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicensedUser {
    pub principal: String,
    pub realm: String,
    /// RFC 3339 with milliseconds, e.g. `2013-03-12T20:04:30.001Z`.
    #[serde(rename = "lastAccessDate")]
    pub last_access_date: String,
}

/// Longest `since` / `until` of a ledger export, in characters.
pub const MAX_EXPORT_TIME: usize = 64;
/// Longest `kind` list of a ledger export, in characters.
pub const MAX_EXPORT_KINDS: usize = 512;

/// `GET /server/manage/ledger/export?...`: the ledger's export as a download, as `ledger export`
/// writes it. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default, deny_unknown_fields)]
pub struct LedgerExportQuery {
    pub format: LedgerExportFormat,
    /// Only entries at or after this time: RFC 3339, or a day (`2026-11-01`, midnight UTC). At
    /// most [`MAX_EXPORT_TIME`] characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 64,
            pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        )
    )]
    pub since: Option<String>,
    /// Only entries before this time, in the same forms.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 64,
            pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        )
    )]
    pub until: Option<String>,
    /// Only these kinds, comma-separated (for CSV the row's kind: `license_released` includes
    /// what `session_closed` entries released). At most [`MAX_EXPORT_KINDS`] characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 512,
            pattern = "^(session_opened|session_refused|license_granted|license_refused|license_released|session_closed|license_installed|license_removed|server_moved|cartridge_assigned|admin_user_changed|licensed_users_cleared|network_changed)(,(session_opened|session_refused|license_granted|license_refused|license_released|session_closed|license_installed|license_removed|server_moved|cartridge_assigned|admin_user_changed|licensed_users_cleared|network_changed))*$"
        )
    )]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LedgerExportFormat {
    /// One row per entry, and one per license a `session_closed` entry released.
    #[default]
    Csv,
    /// One JSON object per line: `seq`, `at` and the event as stored.
    Jsonl,
}

/// `GET /server/manage/licenses/history`: every issue of a license this server's ledger saw
/// installed, the latest install first, with its removal if it was removed or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenseHistory {
    pub licenses: Vec<LicenseIssue>,
    /// `false` while the server is still reading an old ledger: older issues may be missing.
    pub complete: bool,
}

/// One issue of a license (one file, by its content hash) in [`LicenseHistory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenseIssue {
    pub key: String,
    pub serial_number: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub installed: time::OffsetDateTime,
    /// Who installed it: an administrator, `cli:USER`, `vendor:…`; absent if the ledger entry
    /// does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_by: Option<String>,
    /// When it stopped counting: removed, or replaced by a newer issue of the same key.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub removed: Option<time::OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<String>,
    /// The content hash of the newer issue that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// Its terms, when the ledger entry carries the file (entries of old versions do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
}
