//! Offline activation requests: what a license server tells its vendor so the vendor can issue a
//! license bound to it, carried as a file when the server cannot reach the vendor.
//!
//! The request is signed with the server's own Ed25519 key (`DATA_DIR/server.key`, made at first
//! start) and carries the public key, so the vendor can check that the file was not edited on the
//! way and, across activations, that it keeps coming from the same server. As with license files,
//! the signature covers the exact bytes of the `request` value as they stand in the file, after a
//! context string of its own (a license signature can never pass for a request, or the reverse).

use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::{
    identity::Identity,
    keys::KeyPair,
    ledger_report::LedgerSummary,
    server_document::{self, DocumentError, Kind},
};
use crate::sys::VERSION;

pub const FORMAT: &str = "license-server-activation-request-v1";
const SIGNING_CONTEXT: &[u8] = b"license-server activation request v1\n";

/// What the server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    #[serde(rename = "serverId")]
    pub server_id: String,
    pub serial_number: String,
    pub hostname: String,
    pub platform: String,
    pub version: String,
    /// RFC 3339.
    pub created: String,
    /// 128 random bits, hex: two requests are never the same document.
    pub nonce: String,
    /// Where this server's ledger stands, for the vendor to keep (see [`super::ledger_report`]).
    /// Absent in requests of servers without a ledger yet, and of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerSummary>,
    /// On a member of a failover network: every member, whose server ids make the network's id
    /// (`serverId` is then the network's). The member that signs is one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkMembers>,
}

impl ActivationRequest {
    /// Whose ledger the request's head is: the signing member's on a failover network (each
    /// member keeps its own copy of the network's ledger), else the server's.
    pub fn head_owner(&self, signer: &VerifyingKey) -> &str {
        let signer = base64::engine::general_purpose::STANDARD.encode(signer.as_bytes());
        self.network
            .as_ref()
            .and_then(|n| n.members.iter().find(|m| m.public_key == signer))
            .map_or(self.server_id.as_str(), |m| m.server_id.as_str())
    }

    /// The network's members as (server id, public key), if it is a network's request.
    pub fn members(&self) -> Vec<(&str, &str)> {
        self.network.as_ref().map_or_else(Vec::new, |n| {
            n.members
                .iter()
                .map(|m| (m.server_id.as_str(), m.public_key.as_str()))
                .collect()
        })
    }
}

/// Most members a network may have (as the failover room allows).
pub const MAX_MEMBERS: usize = 7;

/// The members of a failover network, in an activation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkMembers {
    pub members: Vec<NetworkMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkMember {
    pub server_id: String,
    /// Its server key's public half, base64.
    pub public_key: String,
}

impl NetworkMembers {
    /// Checks the members against the request that names them, signed with `signer`: 2 to
    /// [`MAX_MEMBERS`] members, each once, whose server ids make `network_id`, the signer one of
    /// them.
    pub fn check(&self, network_id: &str, signer: &VerifyingKey) -> Result<(), String> {
        let count = self.members.len();
        if !(2..=MAX_MEMBERS).contains(&count) {
            return Err(format!(
                "a network has 2 to {MAX_MEMBERS} members, not {count}"
            ));
        }
        let ids: std::collections::BTreeSet<&str> =
            self.members.iter().map(|m| m.server_id.as_str()).collect();
        if ids.len() != count {
            return Err("a member is listed twice".to_owned());
        }
        if super::identity::network_id(ids.iter().copied()).as_str() != network_id {
            return Err(format!(
                "{network_id} is not the id of a network of these members"
            ));
        }
        let signer = base64::engine::general_purpose::STANDARD.encode(signer.as_bytes());
        if !self.members.iter().any(|m| m.public_key == signer) {
            return Err("the request is not signed by one of the network's members".to_owned());
        }
        Ok(())
    }
}

/// The error of [`verify`].
pub type ActivationError = DocumentError;

pub const KIND: Kind = Kind {
    format: FORMAT,
    field: "request",
    context: SIGNING_CONTEXT,
    name: "activation request",
};

/// A new signed request, as the text of a file; on a member of a failover network, for the
/// network (`network`: its id and members).
pub fn create(
    identity: &Identity,
    key: &KeyPair,
    ledger: Option<LedgerSummary>,
    network: Option<(String, NetworkMembers)>,
) -> anyhow::Result<String> {
    let (server_id, network) = match network {
        Some((id, members)) => (id, Some(members)),
        None => (identity.server_id.to_string(), None),
    };
    let request = ActivationRequest {
        server_id,
        serial_number: identity.serial_number.clone(),
        hostname: identity.hostname.clone(),
        platform: identity.platform.clone(),
        version: VERSION.to_owned(),
        created: server_document::now_text(),
        nonce: server_document::nonce()?,
        ledger,
        network,
    };
    server_document::sign(&KIND, &request, key)
}

/// Checks a request file's signature against the key it carries; the vendor's side.
pub fn verify(bytes: &[u8]) -> Result<(ActivationRequest, VerifyingKey), ActivationError> {
    server_document::verify(&KIND, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_verifies_and_any_change_breaks_it() {
        let key = KeyPair::generate().unwrap();
        let identity = Identity::sample("200000510");
        let text = create(&identity, &key, None, None).unwrap();
        let (request, public) = verify(text.as_bytes()).unwrap();
        assert_eq!(request.server_id, identity.server_id.as_str());
        assert_eq!(request.serial_number, "200000510");
        assert_eq!(public, key.public_key());
        // The field itself: a short host name ("vm") may also occur inside the base64 key or
        // signature, and editing those is another failure.
        let field = format!("\"hostname\": \"{}\"", identity.hostname);
        assert!(text.contains(&field), "{text}");
        let edited = text.replace(&field, "\"hostname\": \"elsewhere\"");
        assert_eq!(
            verify(edited.as_bytes()).unwrap_err(),
            ActivationError::BadSignature("activation request")
        );
        assert_ne!(
            create(&identity, &key, None, None).unwrap(),
            text,
            "a fresh nonce each time"
        );
    }
}
