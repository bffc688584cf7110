//! The vendor licensing service's API (`license-vendor serve`), which a license server's
//! `remote/...` endpoints call on an administrator's behalf.

use serde::{Deserialize, Serialize};

use crate::ProductRule;

/// `GET /vendor/v1/licenses` and `GET /server/manage/license/remote/licenses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteLicenses {
    pub licenses: Vec<RemoteLicense>,
}

/// A license an account may activate, in the license representation (`key`, `serverId`, `rules`)
/// with its activation state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteLicense {
    pub key: String,
    /// The server it is activated on when there is exactly one, else `null`.
    #[serde(rename = "serverId")]
    pub server_id: Option<String>,
    pub rules: RemoteRules,
    /// Every server it is activated on.
    pub activations: Vec<Activation>,
    /// How many servers it may be activated on.
    pub max_activations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteRules {
    pub serial_number: u64,
    /// RFC 3339; absent = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<u32>,
    pub products: Vec<ProductRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activation {
    #[serde(rename = "serverId")]
    pub server_id: String,
    /// RFC 3339.
    pub activated: String,
}

/// `POST /vendor/v1/licenses/{key}/activations`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivateRequest {
    /// The server's signed activation request, as the text of its file.
    pub request: String,
}

/// `POST /vendor/v1/deactivations`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeactivateRequest {
    /// The server's signed deactivation receipt (`license deactivate`), as the text of its file.
    pub receipt: String,
}

/// Answer of `DELETE …/activations/{server_id}`: the activation is gone, so the license can be
/// activated for another server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deactivated {
    pub key: String,
    #[serde(rename = "serverId")]
    pub server_id: String,
    /// Through a license server's admin API: whether that server removed its own copy (it does
    /// when the activation was its own).
    #[serde(default)]
    pub removed_here: bool,
}

/// Answer of an activation: the signed license file, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activated {
    pub license_file: String,
}
