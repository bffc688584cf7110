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
    /// 1 to 1024 characters, not only spaces (spaces around the name are trimmed), no control
    /// characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 1024,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub host: String,
    /// What the session is for, shown on the status page. At most 1024 characters, no control
    /// characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 1024, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")
    )]
    pub message: String,
    /// The cartridge pool to draw licenses from; none (or only spaces) = the default pool. At
    /// most 64 characters, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 64, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")
    )]
    pub pool: Option<String>,
    /// The person the session runs for, when the vendor's program knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct User {
    /// 1 to 64 characters, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 64,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub realm: String,
    /// 1 to 256 characters, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
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
    /// grant, never a second one. 1 to 128 characters, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub request_id: String,
    #[serde(deserialize_with = "crate::whole::number")]
    pub product_id: u32,
    #[serde(deserialize_with = "crate::whole::number")]
    pub major_version: u32,
    #[serde(default, rename = "type")]
    pub request_type: RequestType,
    /// How long to wait for a license to free up; default 60, 0 = answer at once; more than 3600
    /// waits 3600.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::optional"
    )]
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
