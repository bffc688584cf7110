//! The failover network as the admin API shows and changes it
//! (`/server/manage/network`, `/server/manage/network/members`).

use serde::{Deserialize, Serialize};

/// Most members a network may have.
pub const MAX_NETWORK_MEMBERS: usize = 7;
/// Longest member of a list (`HOST:PORT=SERVER_ID:KEY`), in characters.
pub const MAX_MEMBER_TOKEN: usize = 512;

/// `GET /server/manage/network`: the network this server is a member of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkView {
    /// What a license for the network is bound to: derived from the members' server ids.
    pub network_id: String,
    /// The server id of the coordinator, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
    pub members: Vec<NetworkMemberView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkMemberView {
    /// Its license port, as the others reach it.
    pub addr: String,
    pub server_id: String,
    /// `HOST:PORT=SERVER_ID:KEY`: the member as a list names it.
    pub member: String,
}

/// `PUT /server/manage/network/members`: the network's members from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NetworkMembersRequest {
    /// Every member, `HOST:PORT=TOKEN` with the token `license-server network identity` prints
    /// (at most 512 characters each): the members that stay and the new ones (each started with
    /// `network join`).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 7))]
    pub members: Vec<String>,
}
