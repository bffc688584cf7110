//! Who is in a network: its members' addresses and keys, as the network's configuration lists
//! them. A member's Raft id is derived from its key ([`node_id`]), so the list needs no ids of its
//! own and no two members can claim the same id without the same key.
//!
//! The text form is TOML, one `[[member]]` table per member with `addr` (its license port,
//! `HOST:PORT`) and `key` (its server key's public half, base64, as `server.key` holds it):
//!
//! ```toml
//! [[member]]
//! addr = "10.0.0.1:1400"
//! key = "…"
//! ```
//!
//! Every member must have the same list: it is what their calls are checked against.

use std::collections::{BTreeMap, BTreeSet};

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{
    envelope::Keys,
    types::{Member, NodeId},
};

/// Members a network may have: Raft's majority gets slower with each, and five survive two
/// failures already.
pub const MAX_MEMBERS: usize = 7;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    #[serde(rename = "member", default)]
    members: Vec<MemberText>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberText {
    addr: String,
    key: String,
}

/// A network's members, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    members: BTreeMap<NodeId, (Member, VerifyingKey)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the network configuration is not valid TOML: {0}")]
    Syntax(String),
    #[error("a network needs 1 to {MAX_MEMBERS} members; this one lists {0}")]
    Count(usize),
    #[error("member {0:?}: the address must be HOST:PORT")]
    Address(String),
    #[error("member {0:?}: the key is not a base64 Ed25519 public key")]
    Key(String),
    #[error("{0:?} is listed twice")]
    Twice(String),
}

/// The Raft id of the member whose server key is `key`: its SHA-256's first 8 bytes, kept below
/// 2^63 so the store's integers hold it.
pub fn node_id(key: &VerifyingKey) -> NodeId {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) & (u64::MAX >> 1)
}

fn valid_addr(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && host.len() <= 253
                && !host
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '/')
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    }
}

impl NetworkConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let text: Text = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        if text.members.is_empty() || text.members.len() > MAX_MEMBERS {
            return Err(ConfigError::Count(text.members.len()));
        }
        let mut members = BTreeMap::new();
        let mut addrs = BTreeSet::new();
        for member in text.members {
            if !valid_addr(&member.addr) {
                return Err(ConfigError::Address(member.addr));
            }
            let key = STANDARD
                .decode(member.key.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
                .ok_or_else(|| ConfigError::Key(member.addr.clone()))?;
            if !addrs.insert(member.addr.clone()) {
                return Err(ConfigError::Twice(member.addr));
            }
            let id = node_id(&key);
            if members.contains_key(&id) {
                return Err(ConfigError::Twice(member.key));
            }
            members.insert(id, (Member { addr: member.addr }, key));
        }
        Ok(Self { members })
    }

    /// The members as Raft knows them.
    pub fn members(&self) -> BTreeMap<NodeId, Member> {
        self.members
            .iter()
            .map(|(id, (member, _))| (*id, member.clone()))
            .collect()
    }

    /// The keys calls are checked against.
    pub fn keys(&self) -> Keys {
        Keys(
            self.members
                .iter()
                .map(|(id, (_, key))| (*id, *key))
                .collect(),
        )
    }

    /// The id of the member with `key`, if it is one.
    pub fn member_id(&self, key: &VerifyingKey) -> Option<NodeId> {
        let id = node_id(key);
        self.members.contains_key(&id).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    fn key(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    fn member(addr: &str, key: &VerifyingKey) -> String {
        format!(
            "[[member]]\naddr = \"{addr}\"\nkey = \"{}\"\n",
            STANDARD.encode(key.as_bytes())
        )
    }

    #[test]
    fn three_members_parse_with_ids_from_their_keys() {
        let text: String = (1..=3)
            .map(|i| member(&format!("10.0.0.{i}:1400"), &key(i)))
            .collect();
        let config = NetworkConfig::parse(&text).unwrap();
        let members = config.members();
        assert_eq!(members.len(), 3);
        assert_eq!(members[&node_id(&key(2))].addr, "10.0.0.2:1400");
        assert_eq!(config.member_id(&key(3)), Some(node_id(&key(3))));
        assert_eq!(config.member_id(&key(4)), None);
        assert!(config.keys().0.values().any(|k| *k == key(1)));
        // Ids are stable, fit in an SQLite integer, and differ.
        assert_eq!(node_id(&key(1)), node_id(&key(1)));
        assert!(members.keys().all(|id| *id <= i64::MAX as u64));
    }

    #[test]
    fn a_mistake_in_the_list_is_named() {
        let cases = [
            (String::new(), ConfigError::Count(0)),
            (
                member("10.0.0.1", &key(1)),
                ConfigError::Address("10.0.0.1".into()),
            ),
            (
                member("10.0.0.1:0", &key(1)),
                ConfigError::Address("10.0.0.1:0".into()),
            ),
            (
                "[[member]]\naddr = \"a:1\"\nkey = \"bm90IGEga2V5\"\n".to_owned(),
                ConfigError::Key("a:1".into()),
            ),
            (
                member("a:1", &key(1)) + &member("a:1", &key(2)),
                ConfigError::Twice("a:1".into()),
            ),
            (
                member("a:1", &key(1)) + &member("b:1", &key(1)),
                ConfigError::Twice(STANDARD.encode(key(1).as_bytes())),
            ),
            (
                (1..=8)
                    .map(|i| member(&format!("h{i}:1"), &key(i)))
                    .collect(),
                ConfigError::Count(8),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(NetworkConfig::parse(&text), Err(expected), "{text}");
        }
        let unknown = NetworkConfig::parse("[[member]]\naddr = \"a:1\"\nkey = \"x\"\nid = 3\n");
        assert!(
            matches!(&unknown, Err(ConfigError::Syntax(why)) if why.contains("unknown field")),
            "{unknown:?}"
        );
    }
}
