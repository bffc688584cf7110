//! Who is in a network: its members' addresses, keys and server ids, as the network's
//! configuration (`network.toml` in each member's data directory) lists them. A member's Raft id
//! is derived from its key ([`node_id`]), so the list needs no ids of its own and no two members
//! can claim the same id without the same key.
//!
//! The text form is TOML, one `[[member]]` table per member with `addr` (its license port,
//! `HOST:PORT`), `key` (its server key's public half, base64, as `server.key` holds it) and
//! `server_id` (its server id, bound to its machine):
//!
//! ```toml
//! [[member]]
//! addr = "10.0.0.1:1400"
//! key = "…"
//! server_id = "…"
//! ```
//!
//! Every member must have the same list: it is what their calls are checked against, and the
//! network's id (what a license for the network is bound to) is derived from the members' server
//! ids. `license-server network identity` prints a member's
//! *token* (`SERVER_ID:KEY`), and `network init --member HOST:PORT=TOKEN …` writes the list.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use anyhow::Context;

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

/// The members' list in a member's data directory.
pub const FILE: &str = "network.toml";

/// The members' list of the data directory `dir`, if it is a member's.
pub fn read(dir: &Path) -> anyhow::Result<Option<NetworkConfig>> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    NetworkConfig::parse(&text)
        .map(Some)
        .with_context(|| format!("{} is not a valid members' list", path.display()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    /// This member joined a network that runs already: it never forms one.
    #[serde(default)]
    joins: bool,
    #[serde(rename = "member", default)]
    members: Vec<MemberText>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberText {
    addr: String,
    key: String,
    server_id: String,
}

/// A network's members, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    members: BTreeMap<NodeId, (Member, VerifyingKey)>,
    /// Whether this member joins a running network rather than forming one.
    joins: bool,
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
    #[error(
        "member {0:?}: the server id must be uppercase hex (as `license-server server-id` prints it)"
    )]
    ServerId(String),
    #[error(
        "{0:?} is not a member: give HOST:PORT=TOKEN, with the token that `license-server network \
         identity` prints on that member"
    )]
    Token(String),
}

/// A member's token: its server id and its key, `SERVER_ID:KEY`.
pub fn token(server_id: &str, key: &VerifyingKey) -> String {
    format!("{server_id}:{}", STANDARD.encode(key.as_bytes()))
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

fn valid_server_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
}

fn parse_key(text: &str) -> Option<VerifyingKey> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
}

impl NetworkConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let text: Text = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        Ok(Self {
            joins: text.joins,
            ..Self::of(text.members)?
        })
    }

    /// The list of a member that joins a network that runs already (`joins`), or forms it.
    pub fn joining(self, joins: bool) -> Self {
        Self { joins, ..self }
    }

    /// Whether this member joins a running network (it never forms one).
    pub fn joins(&self) -> bool {
        self.joins
    }

    /// The list with `members` instead (whether this member joins kept).
    pub fn with_members(
        &self,
        members: impl IntoIterator<Item = Member>,
    ) -> Result<Self, ConfigError> {
        let list = members
            .into_iter()
            .map(|m| MemberText {
                addr: m.addr,
                key: m.key,
                server_id: m.server_id,
            })
            .collect();
        Ok(Self {
            joins: self.joins,
            ..Self::of(list)?
        })
    }

    /// The list `--member HOST:PORT=SERVER_ID:KEY` arguments give.
    pub fn from_tokens(members: &[String]) -> Result<Self, ConfigError> {
        let members = members
            .iter()
            .map(|arg| {
                let (addr, token) = arg
                    .split_once('=')
                    .ok_or_else(|| ConfigError::Token(arg.clone()))?;
                let (server_id, key) = token
                    .split_once(':')
                    .ok_or_else(|| ConfigError::Token(arg.clone()))?;
                Ok(MemberText {
                    addr: addr.trim().to_owned(),
                    key: key.trim().to_owned(),
                    server_id: server_id.trim().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Self::of(members)
    }

    fn of(list: Vec<MemberText>) -> Result<Self, ConfigError> {
        if list.is_empty() || list.len() > MAX_MEMBERS {
            return Err(ConfigError::Count(list.len()));
        }
        let mut members = BTreeMap::new();
        let mut addrs = BTreeSet::new();
        let mut server_ids = BTreeSet::new();
        for member in list {
            if !valid_addr(&member.addr) {
                return Err(ConfigError::Address(member.addr));
            }
            let key =
                parse_key(&member.key).ok_or_else(|| ConfigError::Key(member.addr.clone()))?;
            if !valid_server_id(&member.server_id) {
                return Err(ConfigError::ServerId(member.addr));
            }
            if !addrs.insert(member.addr.clone()) {
                return Err(ConfigError::Twice(member.addr));
            }
            if !server_ids.insert(member.server_id.clone()) {
                return Err(ConfigError::Twice(member.server_id));
            }
            let id = node_id(&key);
            if members.contains_key(&id) {
                return Err(ConfigError::Twice(member.key));
            }
            members.insert(
                id,
                (
                    Member {
                        addr: member.addr,
                        key: STANDARD.encode(key.as_bytes()),
                        server_id: member.server_id,
                    },
                    key,
                ),
            );
        }
        Ok(Self {
            members,
            joins: false,
        })
    }

    /// The list as TOML, as `network.toml` keeps it.
    pub fn to_toml(&self) -> String {
        let head = if self.joins { "joins = true\n" } else { "" };
        let members: Vec<String> = self
            .members
            .values()
            .map(|(m, _)| {
                format!(
                    "[[member]]\naddr = {:?}\nkey = {:?}\nserver_id = {:?}\n",
                    m.addr, m.key, m.server_id
                )
            })
            .collect();
        if head.is_empty() {
            members.join("\n")
        } else {
            format!("{head}\n{}", members.join("\n"))
        }
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

    /// The member with id `id`.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id).map(|(member, _)| member)
    }

    /// How many members the network has.
    pub fn count(&self) -> usize {
        self.members.len()
    }

    /// The members' server ids: what the network's id is derived from
    /// (`licensing::identity::network_id`).
    pub fn server_ids(&self) -> Vec<&str> {
        self.members
            .values()
            .map(|(m, _)| m.server_id.as_str())
            .collect()
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
            "[[member]]\naddr = \"{addr}\"\nkey = \"{}\"\nserver_id = \"{}\"\n",
            STANDARD.encode(key.as_bytes()),
            server_id(key)
        )
    }

    /// A server id per key, for the tests.
    fn server_id(key: &VerifyingKey) -> String {
        crate::sys::hex::upper(&key.as_bytes()[..8])
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
        // The file written back reads the same; tokens give the same list.
        assert_eq!(NetworkConfig::parse(&config.to_toml()).unwrap(), config);
        let tokens: Vec<String> = (1..=3)
            .map(|i| format!("10.0.0.{i}:1400={}", token(&server_id(&key(i)), &key(i))))
            .collect();
        assert_eq!(NetworkConfig::from_tokens(&tokens).unwrap(), config);
        assert_eq!(
            NetworkConfig::from_tokens(&["10.0.0.1:1400".to_owned()]),
            Err(ConfigError::Token("10.0.0.1:1400".into()))
        );
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
                "[[member]]\naddr = \"a:1\"\nkey = \"bm90IGEga2V5\"\nserver_id = \"AB\"\n"
                    .to_owned(),
                ConfigError::Key("a:1".into()),
            ),
            (
                member("a:1", &key(1)).replace(&server_id(&key(1)), "ab-12"),
                ConfigError::ServerId("a:1".into()),
            ),
            (
                member("a:1", &key(1)) + &member("a:1", &key(2)),
                ConfigError::Twice("a:1".into()),
            ),
            (
                member("a:1", &key(1))
                    + &member("b:1", &key(2)).replace(&server_id(&key(2)), &server_id(&key(1))),
                ConfigError::Twice(server_id(&key(1))),
            ),
            (
                member("a:1", &key(1)) + &member("b:1", &key(1)).replace(&server_id(&key(1)), "FF"),
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
        let unknown = NetworkConfig::parse(
            "[[member]]\naddr = \"a:1\"\nkey = \"x\"\nserver_id = \"A\"\nid = 3\n",
        );
        assert!(
            matches!(&unknown, Err(ConfigError::Syntax(why)) if why.contains("unknown field")),
            "{unknown:?}"
        );
    }
}
