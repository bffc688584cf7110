//! How members prove who they are to each other: every call between members, and every answer,
//! carries a MAC under a key that only the two of them can compute, and the receiver checks it
//! against the key pinned for the sender in the network's membership. A stranger (a key that is
//! not a member's) can neither join nor inject entries, and an answer cannot be forged or
//! replayed for another call: it is authenticated together with the call's own MAC.
//!
//! The pair key of members A and B comes from their server keys (`server.key`, Ed25519): the
//! X25519 agreement of A's secret with B's public key (each Ed25519 key has its Montgomery
//! form), hashed with both public keys. It is computed once per member when the membership is
//! read, so a call costs two HMAC-SHA256 and no signature: a member signing and checking every
//! forwarded request and every Raft call with Ed25519 spent a fifth of its CPU on it under load.
//! A MAC names the sender and the receiver, so a call cannot be reflected back to its sender,
//! whose pair key with the receiver is the same.
//!
//! A call carries [`MEMBER`], [`TIME`] and [`SIGNATURE`] headers; the MAC covers a domain tag,
//! both members, the path, the time and the SHA-256 of the body. Calls older or newer than
//! [`SKEW`] are refused, so a captured call cannot be replayed later (within the window, Raft's
//! calls are idempotent: the same append or vote again changes nothing).

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::types::NodeId;

pub const MEMBER: &str = "x-member-id";
pub const TIME: &str = "x-member-time";
pub const SIGNATURE: &str = "x-member-signature";

/// How far a call's time may be from the receiver's clock, in seconds.
pub const SKEW: i64 = 60;

const CALL: &[u8] = b"license-server member call v2\n";
const ANSWER: &[u8] = b"license-server member answer v2\n";
const PAIR: &[u8] = b"license-server member pair v1\n";

/// The members' pinned keys.
#[derive(Debug, Clone, Default)]
pub struct Keys(pub BTreeMap<NodeId, VerifyingKey>);

/// What one member shares with each of the others: their pair keys.
pub struct Trust {
    me: NodeId,
    pairs: BTreeMap<NodeId, [u8; 32]>,
}

impl std::fmt::Debug for Trust {
    // The pair keys are secrets: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("me", &self.me)
            .field("members", &self.pairs.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The headers of an authenticated call or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub member: NodeId,
    /// Unix seconds.
    pub time: i64,
    /// Base64 of the MAC.
    pub signature: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("member {0} is not in this network")]
    Stranger(NodeId),
    #[error("the call's time is {0} s away from this member's clock (at most {SKEW} s)")]
    Skewed(i64),
    #[error("the signature is not valid for member {0}")]
    BadSignature(NodeId),
    #[error("the call is not signed: {0}")]
    Unsigned(String),
}

/// The pair key of `key`'s owner and `them`; `None` if `them` is a degenerate (low-order) key,
/// with which the agreement would be a value anyone can compute.
fn pair_key(key: &SigningKey, them: &VerifyingKey) -> Option<[u8; 32]> {
    let shared = them.to_montgomery().mul_clamped(key.to_scalar_bytes());
    if shared.to_bytes() == [0; 32] {
        return None;
    }
    let mine = key.verifying_key().to_bytes();
    let theirs = them.to_bytes();
    let (low, high) = if mine <= theirs {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    Some(
        Sha256::new()
            .chain_update(PAIR)
            .chain_update(shared.to_bytes())
            .chain_update(low)
            .chain_update(high)
            .finalize()
            .into(),
    )
}

impl Trust {
    /// `me`, holding `key`, among the members of `keys`.
    pub fn new(me: NodeId, key: &SigningKey, keys: &Keys) -> Self {
        let pairs = keys
            .0
            .iter()
            .filter_map(|(id, them)| Some((*id, pair_key(key, them)?)))
            .collect();
        Self { me, pairs }
    }

    /// The MAC of `parts` under the pair key with `other`.
    fn mac(&self, other: NodeId, parts: &[&[u8]]) -> Result<Hmac<Sha256>, EnvelopeError> {
        let key = self
            .pairs
            .get(&other)
            .ok_or(EnvelopeError::Stranger(other))?;
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
        for part in parts {
            mac.update(part);
        }
        Ok(mac)
    }

    /// What a MAC covers: `from` to `to`, and the call or answer.
    fn message(
        tag: &'static [u8],
        from: NodeId,
        to: NodeId,
        path: &str,
        time: i64,
        context: &str,
        body: &[u8],
    ) -> [Vec<u8>; 2] {
        let head = format!("{from}\n{to}\n{path}\n{time}\n{context}\n");
        [
            [tag, head.as_bytes()].concat(),
            Sha256::digest(body).to_vec(),
        ]
    }

    fn seal(&self, to: NodeId, time: i64, message: &[Vec<u8>; 2]) -> Result<Signed, EnvelopeError> {
        let mac = self.mac(to, &[&message[0], &message[1]])?;
        Ok(Signed {
            member: self.me,
            time,
            signature: STANDARD.encode(mac.finalize().into_bytes()),
        })
    }

    fn check(&self, signed: &Signed, message: &[Vec<u8>; 2]) -> Result<(), EnvelopeError> {
        let mac = self.mac(signed.member, &[&message[0], &message[1]])?;
        let tag = STANDARD
            .decode(&signed.signature)
            .map_err(|_| EnvelopeError::BadSignature(signed.member))?;
        // Constant time.
        mac.verify_slice(&tag)
            .map_err(|_| EnvelopeError::BadSignature(signed.member))
    }

    /// Authenticates a call to member `to`'s `path` with `body`, at `time`.
    pub fn sign_call(
        &self,
        to: NodeId,
        path: &str,
        time: i64,
        body: &[u8],
    ) -> Result<Signed, EnvelopeError> {
        let message = Self::message(CALL, self.me, to, path, time, "", body);
        self.seal(to, time, &message)
    }

    /// Checks a call received at `now` (unix seconds).
    pub fn verify_call(
        &self,
        path: &str,
        signed: &Signed,
        body: &[u8],
        now: i64,
    ) -> Result<(), EnvelopeError> {
        let skew = (now - signed.time).abs();
        if skew > SKEW {
            return Err(EnvelopeError::Skewed(skew));
        }
        let message = Self::message(CALL, signed.member, self.me, path, signed.time, "", body);
        self.check(signed, &message)
    }

    /// Authenticates the answer `body` to the call `call` (checked) to `path`.
    pub fn sign_answer(
        &self,
        path: &str,
        call: &Signed,
        body: &[u8],
    ) -> Result<Signed, EnvelopeError> {
        let message = Self::message(
            ANSWER,
            self.me,
            call.member,
            path,
            call.time,
            &call.signature,
            body,
        );
        self.seal(call.member, call.time, &message)
    }

    /// Checks the answer to `call`: from `expected`, the member that was called.
    pub fn verify_answer(
        &self,
        expected: NodeId,
        path: &str,
        call: &Signed,
        answer: &Signed,
        body: &[u8],
    ) -> Result<(), EnvelopeError> {
        if answer.member != expected {
            return Err(EnvelopeError::BadSignature(expected));
        }
        let message = Self::message(
            ANSWER,
            expected,
            self.me,
            path,
            call.time,
            &call.signature,
            body,
        );
        self.check(answer, &message)
    }
}

/// The three headers, read by `get`.
pub fn read_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Signed, EnvelopeError> {
    let header =
        |name: &str| get(name).ok_or_else(|| EnvelopeError::Unsigned(format!("no {name} header")));
    let number = |name: &str| -> Result<i64, EnvelopeError> {
        header(name)?
            .trim()
            .parse()
            .map_err(|_| EnvelopeError::Unsigned(format!("{name} is not a number")))
    };
    Ok(Signed {
        member: u64::try_from(number(MEMBER)?)
            .map_err(|_| EnvelopeError::Unsigned(format!("{MEMBER} is negative")))?,
        time: number(TIME)?,
        signature: header(SIGNATURE)?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// Member `me` (key `me`) in a network of members 1 and 2; `as_if` pins other keys.
    fn trust(me: u8, as_if: &[(NodeId, u8)]) -> Trust {
        let mut keys = Keys(BTreeMap::from([
            (1, key(1).verifying_key()),
            (2, key(2).verifying_key()),
        ]));
        for (id, seed) in as_if {
            keys.0.insert(*id, key(*seed).verifying_key());
        }
        Trust::new(NodeId::from(me), &key(me), &keys)
    }

    const PATH: &str = "/members/v1/vote";

    #[test]
    fn a_call_and_its_answer_verify_and_nothing_else_does() {
        let (one, two) = (trust(1, &[]), trust(2, &[]));
        let call = one.sign_call(2, PATH, 1000, b"{}").unwrap();
        two.verify_call(PATH, &call, b"{}", 1010).unwrap();
        // A stranger (key 3) knows no pair key with member 2; as member 1 it has the wrong one.
        let stranger = trust(3, &[]).sign_call(2, PATH, 1000, b"{}").unwrap();
        let impostor = Trust::new(
            1,
            &key(3),
            &Keys(BTreeMap::from([(2, key(2).verifying_key())])),
        )
        .sign_call(2, PATH, 1000, b"{}")
        .unwrap();
        let cases: [(&str, &Signed, &[u8], i64, EnvelopeError); 5] = [
            (
                "/members/v1/append",
                &call,
                b"{}",
                1010,
                EnvelopeError::BadSignature(1),
            ),
            (PATH, &call, b"{ }", 1010, EnvelopeError::BadSignature(1)),
            (PATH, &call, b"{}", 1100, EnvelopeError::Skewed(100)),
            (PATH, &stranger, b"{}", 1000, EnvelopeError::Stranger(3)),
            (PATH, &impostor, b"{}", 1000, EnvelopeError::BadSignature(1)),
        ];
        for (path, signed, body, now, expected) in cases {
            assert_eq!(two.verify_call(path, signed, body, now), Err(expected));
        }
        // Reflected back to member 1 as if member 2 had sent it: refused.
        let reflected = Signed {
            member: 2,
            ..call.clone()
        };
        assert_eq!(
            one.verify_call(PATH, &reflected, b"{}", 1000),
            Err(EnvelopeError::BadSignature(2))
        );
        let answer = two.sign_answer(PATH, &call, b"ok").unwrap();
        one.verify_answer(2, PATH, &call, &answer, b"ok").unwrap();
        // Not for another call, nor from another member, nor another body.
        let other = one.sign_call(2, PATH, 1001, b"{}").unwrap();
        assert!(one.verify_answer(2, PATH, &other, &answer, b"ok").is_err());
        assert!(one.verify_answer(1, PATH, &call, &answer, b"ok").is_err());
        assert!(one.verify_answer(2, PATH, &call, &answer, b"no").is_err());
    }

    #[test]
    fn both_members_of_a_pair_compute_the_same_key_and_a_third_another() {
        let keys = Keys(
            (1..=3)
                .map(|id| (NodeId::from(id), key(id).verifying_key()))
                .collect(),
        );
        let [one, two, three] = [1, 2, 3].map(|id| Trust::new(NodeId::from(id), &key(id), &keys));
        assert_eq!(one.pairs[&2], two.pairs[&1]);
        assert_ne!(one.pairs[&2], one.pairs[&3]);
        assert_ne!(three.pairs[&1], one.pairs[&2]);
        // A low-order public key (the identity) gives no pair key: its sender is a stranger.
        let identity = VerifyingKey::from_bytes(&{
            let mut bytes = [0; 32];
            bytes[0] = 1;
            bytes
        })
        .unwrap();
        let weak = Trust::new(1, &key(1), &Keys(BTreeMap::from([(7, identity)])));
        assert!(weak.pairs.is_empty());
    }
}
