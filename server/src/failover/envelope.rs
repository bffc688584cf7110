//! How members prove who they are to each other: every Raft call between members, and every
//! answer, is signed with the sender's own server key (`server.key`), and the receiver checks
//! the signature against the key pinned for that member in the network's membership. A stranger
//! (a key that is not a member's) can neither join nor inject entries, and an answer cannot be
//! forged or replayed for another call: it is signed together with the call's own signature.
//!
//! A call carries [`MEMBER`], [`TIME`] and [`SIGNATURE`] headers; the signature covers a domain
//! tag, the path, the time and the SHA-256 of the body. Calls older or newer than [`SKEW`] are
//! refused, so a captured call cannot be replayed later (within the window, Raft's calls are
//! idempotent: the same append or vote again changes nothing).

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::types::NodeId;
use crate::sys::hex;

pub const MEMBER: &str = "x-member-id";
pub const TIME: &str = "x-member-time";
pub const SIGNATURE: &str = "x-member-signature";

/// How far a call's time may be from the receiver's clock, in seconds.
pub const SKEW: i64 = 60;

const CALL: &[u8] = b"license-server member call v1\n";
const ANSWER: &[u8] = b"license-server member answer v1\n";

/// The members' pinned keys.
#[derive(Debug, Clone, Default)]
pub struct Keys(pub BTreeMap<NodeId, VerifyingKey>);

/// The headers of a signed call or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub member: NodeId,
    /// Unix seconds.
    pub time: i64,
    /// Base64.
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

fn message(tag: &[u8], path: &str, time: i64, context: &str, body: &[u8]) -> Vec<u8> {
    let digest = hex::lower(&Sha256::digest(body));
    [
        tag,
        format!("{path}\n{time}\n{context}\n{digest}\n").as_bytes(),
    ]
    .concat()
}

/// Signs a call from `member` to `path` with `body`, at `time`.
pub fn sign_call(key: &SigningKey, member: NodeId, path: &str, time: i64, body: &[u8]) -> Signed {
    let signature = key.sign(&message(CALL, path, time, "", body));
    Signed {
        member,
        time,
        signature: STANDARD.encode(signature.to_bytes()),
    }
}

/// Signs the answer `body` to the call whose signature was `call`.
pub fn sign_answer(
    key: &SigningKey,
    member: NodeId,
    path: &str,
    call: &Signed,
    body: &[u8],
) -> Signed {
    let signature = key.sign(&message(ANSWER, path, call.time, &call.signature, body));
    Signed {
        member,
        time: call.time,
        signature: STANDARD.encode(signature.to_bytes()),
    }
}

fn check(keys: &Keys, signed: &Signed, message: &[u8]) -> Result<(), EnvelopeError> {
    let key = keys
        .0
        .get(&signed.member)
        .ok_or(EnvelopeError::Stranger(signed.member))?;
    let signature = STANDARD
        .decode(&signed.signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or(EnvelopeError::BadSignature(signed.member))?;
    key.verify(message, &signature)
        .map_err(|_| EnvelopeError::BadSignature(signed.member))
}

/// Checks a call received at `now` (unix seconds).
pub fn verify_call(
    keys: &Keys,
    path: &str,
    signed: &Signed,
    body: &[u8],
    now: i64,
) -> Result<(), EnvelopeError> {
    let skew = (now - signed.time).abs();
    if skew > SKEW {
        return Err(EnvelopeError::Skewed(skew));
    }
    check(keys, signed, &message(CALL, path, signed.time, "", body))
}

/// Checks the answer to `call`: signed by `expected`, the member that was called.
pub fn verify_answer(
    keys: &Keys,
    expected: NodeId,
    path: &str,
    call: &Signed,
    answer: &Signed,
    body: &[u8],
) -> Result<(), EnvelopeError> {
    if answer.member != expected {
        return Err(EnvelopeError::BadSignature(expected));
    }
    check(
        keys,
        answer,
        &message(ANSWER, path, call.time, &call.signature, body),
    )
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

    #[test]
    fn a_call_and_its_answer_verify_and_nothing_else_does() {
        let keys = Keys(BTreeMap::from([
            (1, key(1).verifying_key()),
            (2, key(2).verifying_key()),
        ]));
        let call = sign_call(&key(1), 1, "/members/v1/vote", 1000, b"{}");
        verify_call(&keys, "/members/v1/vote", &call, b"{}", 1010).unwrap();
        const PATH: &str = "/members/v1/vote";
        let stranger = sign_call(&key(3), 3, PATH, 1000, b"{}");
        // Member 2's id with a stranger's key.
        let impostor = sign_call(&key(3), 2, PATH, 1000, b"{}");
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
            (PATH, &impostor, b"{}", 1000, EnvelopeError::BadSignature(2)),
        ];
        for (path, signed, body, now, expected) in cases {
            assert_eq!(verify_call(&keys, path, signed, body, now), Err(expected));
        }
        let answer = sign_answer(&key(2), 2, "/members/v1/vote", &call, b"ok");
        verify_answer(&keys, 2, "/members/v1/vote", &call, &answer, b"ok").unwrap();
        // Not for another call, nor from another member, nor another body.
        let other = sign_call(&key(1), 1, "/members/v1/vote", 1001, b"{}");
        assert!(verify_answer(&keys, 2, "/members/v1/vote", &other, &answer, b"ok").is_err());
        assert!(verify_answer(&keys, 1, "/members/v1/vote", &call, &answer, b"ok").is_err());
        assert!(verify_answer(&keys, 2, "/members/v1/vote", &call, &answer, b"no").is_err());
    }
}
