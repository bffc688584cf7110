//! Offline activation requests: what a license server tells its vendor so the vendor can issue a
//! license bound to it, carried as a file when the server cannot reach the vendor.
//!
//! The request is signed with the server's own Ed25519 key (`DATA_DIR/server.key`, made at first
//! start) and carries the public key, so the vendor can check that the file was not edited on the
//! way and, across activations, that it keeps coming from the same server. As with license files,
//! the signature covers the exact bytes of the `request` value as they stand in the file, after a
//! context string of its own (a license signature can never pass for a request, or the reverse).

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;
use time::OffsetDateTime;

use super::{identity::Identity, keys::KeyPair};
use crate::sys::{VERSION, hex, timestamp::rfc3339};

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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    format: String,
    public_key: String,
    #[serde(borrow)]
    request: &'a RawValue,
    signature: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ActivationError {
    #[error("the activation request is malformed: {0}")]
    Malformed(String),
    #[error(
        "the activation request's signature is not valid: it was changed after the server made it"
    )]
    BadSignature,
}

/// A new signed request, as the text of a file.
pub fn create(identity: &Identity, key: &KeyPair) -> anyhow::Result<String> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
    let now = OffsetDateTime::now_utc();
    let request = ActivationRequest {
        server_id: identity.server_id.to_string(),
        serial_number: identity.serial_number.clone(),
        hostname: identity.hostname.clone(),
        platform: identity.platform.clone(),
        version: VERSION.to_owned(),
        created: rfc3339(now.replace_nanosecond(0).unwrap_or(now)),
        nonce: hex::lower(&nonce),
    };
    let embedded = serde_json::to_string_pretty(&request)?.replace('\n', "\n  ");
    let signature = key.sign(&[SIGNING_CONTEXT, embedded.as_bytes()].concat());
    Ok(format!(
        "{{\n  \"format\": \"{FORMAT}\",\n  \"public_key\": \"{}\",\n  \"request\": {embedded},\n  \
         \"signature\": \"{}\"\n}}\n",
        STANDARD.encode(key.public_key().as_bytes()),
        STANDARD.encode(signature.to_bytes())
    ))
}

/// Checks a request file's signature against the key it carries; the vendor's side.
pub fn verify(bytes: &[u8]) -> Result<(ActivationRequest, VerifyingKey), ActivationError> {
    let malformed = |why: String| ActivationError::Malformed(why);
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if envelope.format != FORMAT {
        return Err(malformed(format!(
            "format {:?} is not {FORMAT:?}",
            envelope.format
        )));
    }
    let key_bytes: [u8; 32] = STANDARD
        .decode(&envelope.public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| malformed("public_key is not a base64 Ed25519 key".into()))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| malformed("public_key is not an Ed25519 key".into()))?;
    let signature = STANDARD
        .decode(&envelope.signature)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or_else(|| malformed("the signature is not a base64 Ed25519 signature".into()))?;
    let message = [SIGNING_CONTEXT, envelope.request.get().as_bytes()].concat();
    key.verify(&message, &signature)
        .map_err(|_| ActivationError::BadSignature)?;
    let request = serde_json::from_str(envelope.request.get())
        .map_err(|e| malformed(format!("request: {e}")))?;
    Ok((request, key))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::licensing::identity::{Binding, ServerId};

    #[test]
    fn a_request_verifies_and_any_change_breaks_it() {
        let key = KeyPair::generate().unwrap();
        let identity = Identity::detect(
            Binding::fixed(ServerId::generate().unwrap()),
            "200000510".into(),
            IpAddr::from([127, 0, 0, 1]),
            1400,
        );
        let text = create(&identity, &key).unwrap();
        let (request, public) = verify(text.as_bytes()).unwrap();
        assert_eq!(request.server_id, identity.server_id.as_str());
        assert_eq!(request.serial_number, "200000510");
        assert_eq!(public, key.public_key());
        let edited = text.replace(&identity.hostname, "elsewhere");
        assert_eq!(
            verify(edited.as_bytes()).unwrap_err(),
            ActivationError::BadSignature
        );
        assert_ne!(
            create(&identity, &key).unwrap(),
            text,
            "a fresh nonce each time"
        );
    }
}
