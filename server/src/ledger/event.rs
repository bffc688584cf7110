//! What the ledger records: one [`Event`] per change, stored as the JSON `body` of a row whose
//! `kind` is the event's.

use std::net::IpAddr;

use models::{LicenseType, RefusalReason, SessionStatus, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::chain::CHAIN;
use crate::store::NewLedgerRow;

/// One change. The JSON of an event is a ledger row's `body`; its `kind` is the row's `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    SessionOpened {
        session_id: u64,
        host: String,
        ip_address: IpAddr,
        message: String,
        pool: Option<String>,
        user: Option<User>,
        /// SHA-256 of the session's token (hex); never the token. Absent in entries written
        /// before session tokens existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_sha256: Option<String>,
        /// In a failover network, the server id of the member the client opened it on (which
        /// holds the session); absent on a single server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_id: Option<String>,
    },
    LicenseGranted {
        session_id: u64,
        license_id: u64,
        request_id: String,
        product_id: u32,
        major_version: u32,
        product: String,
        #[serde(rename = "type")]
        license_type: LicenseType,
        pool: Option<String>,
    },
    /// A request that got no license; counts as `failed` for the cartridge it asked for first.
    LicenseRefused {
        session_id: u64,
        product_id: u32,
        major_version: u32,
        pool: Option<String>,
        /// Why; absent in entries written before refusals said why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<RefusalReason>,
    },
    /// A session that was not opened (a new user beyond the license's limit).
    SessionRefused {
        host: String,
        ip_address: IpAddr,
        pool: Option<String>,
        user: Option<User>,
        reason: RefusalReason,
    },
    LicenseReleased {
        license_id: u64,
        credits_used: u64,
    },
    /// A session ended: finished by the client or an administrator, or dropped for missing
    /// heartbeats. Releases everything it still held, in the same entry.
    SessionClosed {
        session_id: u64,
        status: SessionStatus,
        released: Vec<ReleasedLicense>,
        /// Who ended it, when not the client itself (an administrator, the heartbeat timeout).
        by: Option<String>,
    },
    LicenseInstalled {
        key: String,
        sha256: String,
        serial_number: u64,
        /// Who installed it: the administrator (admin API) or `cli:USER`; `None` in entries
        /// written before installs said who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// The content hash of the older issue of the same key that this one replaced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<String>,
        /// The license file itself: a failover network's members install it from here, and the
        /// ledger shows what was granted from. Absent in entries written before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
    },
    CartridgeAssigned {
        serial_number: u64,
        pool: Option<String>,
    },
    /// A license was removed (`license remove`, the admin API): its cartridges stop granting;
    /// licenses held from it stay until released.
    LicenseRemoved {
        key: String,
        sha256: String,
        serial_number: u64,
        by: String,
    },
    /// The data directory was found on another machine: from here on the server has a new id,
    /// and licenses bound to the previous one stop counting after a grace period.
    ServerMoved {
        previous_server_id: String,
        server_id: String,
        /// What the new machine's fingerprint was computed from.
        host_inputs: String,
    },
    /// An administrator account was added, got a new password, or was removed.
    AdminUserChanged {
        principal: String,
        change: String,
        role: Option<String>,
        by: String,
    },
    /// The members of a failover network changed: its id (derived from its members' server ids)
    /// changed with them. Licenses bound to the previous id count for a grace period.
    NetworkChanged {
        previous_network_id: String,
        network_id: String,
        /// The members' server ids from now on.
        members: Vec<String>,
        by: String,
    },
    /// Licensed users were cleared: one (`realm`, `principal`) or all.
    LicensedUsersCleared {
        realm: Option<String>,
        principal: Option<String>,
        removed: u64,
        by: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasedLicense {
    pub license_id: u64,
    pub credits_used: u64,
}

/// The kinds of entries that change a member's licenses, pools or network id (besides the
/// ledger): what a member that catches up from a snapshot applies to them too.
pub const INVENTORY_KINDS: [&str; 4] = [
    "license_installed",
    "license_removed",
    "network_changed",
    "cartridge_assigned",
];

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SessionOpened { .. } => "session_opened",
            Self::LicenseGranted { .. } => "license_granted",
            Self::LicenseRefused { .. } => "license_refused",
            Self::SessionRefused { .. } => "session_refused",
            Self::LicenseReleased { .. } => "license_released",
            Self::SessionClosed { .. } => "session_closed",
            Self::LicenseInstalled { .. } => "license_installed",
            Self::LicenseRemoved { .. } => "license_removed",
            Self::ServerMoved { .. } => "server_moved",
            Self::CartridgeAssigned { .. } => "cartridge_assigned",
            Self::AdminUserChanged { .. } => "admin_user_changed",
            Self::LicensedUsersCleared { .. } => "licensed_users_cleared",
            Self::NetworkChanged { .. } => "network_changed",
        }
    }

    /// The row this event is stored as.
    pub fn row(&self, at: OffsetDateTime) -> NewLedgerRow {
        NewLedgerRow {
            at,
            kind: self.kind(),
            body: serde_json::to_string(self)
                .unwrap_or_else(|e| unreachable!("ledger events always serialise: {e}")),
            chain: CHAIN,
        }
    }
}

#[cfg(test)]
impl Event {
    /// A small event for the ledger's own tests: a refusal in session `session_id`.
    pub(super) fn sample(session_id: u64) -> Self {
        Self::LicenseRefused {
            session_id,
            product_id: 1,
            major_version: 0,
            pool: None,
            reason: Some(RefusalReason::NoSeatFree),
        }
    }
}
