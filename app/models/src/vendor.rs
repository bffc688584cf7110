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

/// `POST /vendor/v1/ledger-reports`: a license server anchors its ledger's head at its vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerReportRequest {
    /// The server's signed ledger report, as the text of its document.
    pub report: String,
}

/// What the vendor concluded from a ledger head, compared with the heads it kept of that server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HeadVerdict {
    /// The first head the vendor sees of this server.
    First,
    /// The head the vendor has already.
    Same,
    /// A head after the last one, from a ledger that still holds the last one.
    Extends,
    /// A head after the last one that does not say what the ledger holds at the last one (an
    /// offline request from a server that lost track of its reports): not checked.
    Unlinked,
    /// The ledger has another hash at an entry the vendor kept: its history was rewritten.
    Rewritten,
    /// The ledger ends before, or no longer holds, an entry the vendor kept.
    Truncated,
}

impl HeadVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Same => "same",
            Self::Extends => "extends",
            Self::Unlinked => "unlinked",
            Self::Rewritten => "rewritten",
            Self::Truncated => "truncated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::First,
            Self::Same,
            Self::Extends,
            Self::Unlinked,
            Self::Rewritten,
            Self::Truncated,
        ]
        .into_iter()
        .find(|v| v.as_str() == text)
    }

    /// A finding against the server's history, kept until the vendor looks into it.
    pub fn is_tampering(self) -> bool {
        matches!(self, Self::Rewritten | Self::Truncated)
    }
}

/// The answer to a [`LedgerReportRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerReportAnswer {
    /// What the vendor concluded, when it recorded the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<HeadVerdict>,
    /// Set instead of `verdict`: the report must also say what the ledger holds at this entry
    /// (the last one the vendor kept); nothing was recorded. Send it again with that link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_link: Option<u64>,
    /// The vendor's words.
    pub detail: String,
}

/// `GET /server/manage/license/remote`: whether this server knows a vendor licensing service
/// (`--vendor-url`), so the Vendor screen can say so before anyone tries to log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VendorService {
    pub configured: bool,
    /// The service's address, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
