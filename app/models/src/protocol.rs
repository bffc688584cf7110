//! The license protocol on the license port: what client machines send and receive. Documented in
//! the README; the server and `license-server client` both use these types.

use serde::{Deserialize, Serialize};

use crate::LicenseType;

/// `POST /v1/sessions`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    /// The client's host name, as it knows itself (the server also records the peer address).
    pub host: String,
    #[serde(default)]
    pub message: String,
    /// The cartridge pool to draw licenses from; none = the default pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The person the session runs for, when the vendor's program knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct User {
    /// 1 to 64 bytes, no control characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub realm: String,
    /// 1 to 256 bytes, no control characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub principal: String,
}

/// Answer of `POST /v1/sessions` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionOpened {
    pub session_id: u64,
    /// The session's secret: every later call on this session carries it as
    /// `Authorization: Bearer TOKEN`. 256 random bits as 64 hex digits; never shown elsewhere.
    pub session_token: String,
    pub server_id: String,
    /// Send `POST /v1/sessions/{id}/heartbeat` at least this often.
    pub heartbeat_interval_s: u64,
    /// A session without a heartbeat for this long is dropped and its licenses return.
    pub timeout_s: u64,
}

/// Which kind of cartridge may answer a license request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RequestType {
    /// Runcount first, then credits.
    #[default]
    All,
    Runcount,
    Credits,
}

/// `POST /v1/sessions/{id}/licenses`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestLicense {
    /// Chosen by the client, unique within the session: a retry with the same id gets the same
    /// grant, never a second one.
    pub request_id: String,
    pub product_id: u32,
    pub major_version: u32,
    #[serde(default, rename = "type")]
    pub request_type: RequestType,
    /// How long to wait for a license to free up; default 60, 0 = answer at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_s: Option<u64>,
}

/// Answer of a granted license request (200): which cartridge answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Granted {
    pub license_id: u64,
    pub product_id: u32,
    pub major_version: u32,
    pub product: String,
    #[serde(rename = "type")]
    pub license_type: LicenseType,
}

/// Answer of `DELETE /v1/sessions/{id}/licenses/{license_id}` (200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Released {
    /// Credits debited for this license: `max(1, ceil(seconds held))` for a credit license, 0 for
    /// runcount.
    pub credits_used: u64,
}

/// Answer of `DELETE /v1/sessions/{id}` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionClosed {
    pub session_id: u64,
    pub status: crate::SessionStatus,
    /// Credits debited for the licenses this close released.
    pub credits_used: u64,
}
