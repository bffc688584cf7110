//! The signed head: the server's own signature on "the ledger passes through entry `seq` with hash
//! `hash`", so that cutting the ledger short or rewriting it (recomputing every hash after an
//! edit, which the chain alone cannot catch) is found.
//!
//! The server signs a head with its own key (`server.key`) at every snapshot and when it starts
//! and stops, and keeps the newest outside the ledger table: in the file [`HEAD_FILE`] of the
//! data directory and in the snapshot rows. At start and in `ledger verify`, the newest head
//! found must still be in the ledger ([`check`]):
//!
//! - a ledger without the head's entry was **cut short**;
//! - a ledger whose entry there has another hash was **rewritten**;
//! - after a head written by a server that **stopped cleanly**, entries that only a running
//!   server writes (sessions, grants, refusals, releases) were **appended by someone else**.
//!   Entries that `license-server` commands write while the server is stopped (installs, users)
//!   are not of those kinds, so they need no signature of their own.
//!
//! Someone who holds the server key (root on the customer's machine) can sign heads too; against
//! that, heads are anchored off the machine, at the vendor's service.

use std::{io, path::Path};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use crate::{
    store::{Store, StoreError},
    sys::{
        atomic_file::{self, Mode},
        hex,
        timestamp::rfc3339,
    },
};

/// The newest signed head, in the data directory.
pub const HEAD_FILE: &str = "ledger-head.json";

/// The kinds of entries only a running server's ledger writer appends.
const SERVER_ONLY_KINDS: [&str; 7] = [
    "network_changed",
    "session_opened",
    "session_refused",
    "license_granted",
    "license_refused",
    "license_released",
    "session_closed",
];

/// What the signature covers: a ledger entry, and (at a snapshot) the state the server folded up
/// to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    pub seq: u64,
    pub hash: String,
    pub signed_at: String,
    /// Written by a server that stopped cleanly: nothing but a running server appends sessions
    /// and grants, so none may follow it.
    pub stopped: bool,
    /// SHA-256 of the snapshot taken at this head, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_sha256: Option<String>,
    /// The signing key (hex), so a head signed by another key is named as such.
    pub key: String,
    pub signature: String,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HeadError {
    #[error(
        "the ledger was cut short: this server signed that it held entry {seq}, and the ledger \
         now ends at entry {tail}"
    )]
    Truncated { seq: u64, tail: u64 },
    #[error(
        "the ledger was rewritten: entry {seq}, which this server signed, has another hash now \
         (an entry up to it was changed and the hashes after it recomputed)"
    )]
    Rewritten { seq: u64 },
    #[error(
        "entries were appended after the server stopped cleanly at entry {seq}, by something \
         other than the server: {kinds}"
    )]
    AppendedAfterStop { seq: u64, kinds: String },
    #[error("the signed head {origin} is not valid: {why}")]
    Invalid { origin: String, why: String },
    #[error("cannot read the ledger to check its signed head: {0}")]
    Store(String),
}

impl From<StoreError> for HeadError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

impl SignedHead {
    pub fn sign(
        key: &SigningKey,
        seq: u64,
        hash: &str,
        stopped: bool,
        state_sha256: Option<String>,
    ) -> Self {
        let mut head = Self {
            seq,
            hash: hash.to_owned(),
            signed_at: rfc3339(OffsetDateTime::now_utc()),
            stopped,
            state_sha256,
            key: hex::lower(key.verifying_key().as_bytes()),
            signature: String::new(),
        };
        head.signature = hex::lower(&key.sign(&head.message()).to_bytes());
        head
    }

    /// The signed bytes: every field but the signature, one per line, after a domain tag so a
    /// head's signature is never mistaken for another document's.
    fn message(&self) -> Vec<u8> {
        format!(
            "license-server ledger head v1\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.seq,
            self.hash,
            self.signed_at,
            self.stopped,
            self.state_sha256.as_deref().unwrap_or("-"),
            self.key
        )
        .into_bytes()
    }

    /// Checks the head was signed by `key`. `origin` names where it was read, for the error.
    pub fn verify(&self, key: &VerifyingKey, origin: &str) -> Result<(), HeadError> {
        let invalid = |why: &str| HeadError::Invalid {
            origin: origin.to_owned(),
            why: why.to_owned(),
        };
        if self.key != hex::lower(key.as_bytes()) {
            return Err(invalid("it was signed by another key than this server's"));
        }
        let signature = hex::decode::<64>(&self.signature)
            .map(|bytes| Signature::from_bytes(&bytes))
            .ok_or_else(|| invalid("its signature is not 64 bytes of hex"))?;
        key.verify(&self.message(), &signature)
            .map_err(|_| invalid("its signature does not match its content"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("a head always serialises: {e}"))
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, HeadError> {
        serde_json::from_str(text).map_err(|e| HeadError::Invalid {
            origin: origin.to_owned(),
            why: format!("it is not a signed head: {e}"),
        })
    }

    /// Whichever of two heads is the newer.
    pub fn newest(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if (b.seq, &b.signed_at) > (a.seq, &a.signed_at) {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        }
    }
}

/// The head in the data directory's [`HEAD_FILE`], checked against `key`; `None` if there is no
/// such file (a server that never ran, or an earlier version's data directory).
pub fn read_file(dir: &Path, key: &VerifyingKey) -> Result<Option<SignedHead>, HeadError> {
    let path = dir.join(HEAD_FILE);
    let origin = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(HeadError::Invalid {
                origin,
                why: e.to_string(),
            });
        }
    };
    let head = SignedHead::parse(&text, &origin)?;
    head.verify(key, &origin)?;
    Ok(Some(head))
}

/// Replaces the data directory's [`HEAD_FILE`] (atomically, synced).
pub fn write_file(dir: &Path, head: &SignedHead) -> io::Result<()> {
    atomic_file::replace(
        &dir.join(HEAD_FILE),
        head.to_json().as_bytes(),
        Mode::Private,
    )
}

/// Checks that the ledger in `store` still passes through `head`: see the module's documentation.
pub async fn check(store: &Store, head: &SignedHead) -> Result<(), HeadError> {
    match store.ledger_hash(head.seq).await? {
        None => {
            let tail = store.ledger_tail().await?.map_or(0, |(seq, _)| seq);
            return Err(HeadError::Truncated {
                seq: head.seq,
                tail,
            });
        }
        Some(hash) if hash != head.hash => return Err(HeadError::Rewritten { seq: head.seq }),
        Some(_) => {}
    }
    if head.stopped {
        let appended: Vec<String> = store
            .ledger_kinds_after(head.seq)
            .await?
            .into_iter()
            .filter(|kind| SERVER_ONLY_KINDS.contains(&kind.as_str()))
            .collect();
        if !appended.is_empty() {
            return Err(HeadError::AppendedAfterStop {
                seq: head.seq,
                kinds: appended.join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_head_verifies_with_its_own_key_only_and_not_once_edited() {
        let head = SignedHead::sign(&key(1), 42, &"a".repeat(64), true, Some("s".into()));
        head.verify(&key(1).verifying_key(), "test").unwrap();
        let other = head.verify(&key(2).verifying_key(), "test").unwrap_err();
        assert!(other.to_string().contains("another key"), "{other}");
        for edited in [
            SignedHead {
                seq: 43,
                ..head.clone()
            },
            SignedHead {
                stopped: false,
                ..head.clone()
            },
            SignedHead {
                state_sha256: None,
                ..head.clone()
            },
        ] {
            let err = edited.verify(&key(1).verifying_key(), "test").unwrap_err();
            assert!(err.to_string().contains("does not match"), "{err}");
        }
        let parsed = SignedHead::parse(&head.to_json(), "test").unwrap();
        assert_eq!(parsed, head);
    }

    #[test]
    fn the_newest_head_is_the_one_furthest_along() {
        let a = SignedHead::sign(&key(1), 5, "x", false, None);
        let b = SignedHead::sign(&key(1), 9, "y", true, None);
        assert_eq!(
            SignedHead::newest(Some(a.clone()), Some(b.clone())),
            Some(b.clone())
        );
        assert_eq!(SignedHead::newest(Some(b.clone()), Some(a)), Some(b));
        assert_eq!(SignedHead::newest(None, None), None);
    }
}
