//! Documents a license server signs with its own key (`DATA_DIR/server.key`) for its vendor: the
//! offline activation request, and the deactivation receipt.
//!
//! Both carry the server's public key, so the vendor can check that a file was not edited on the
//! way and that it comes from the same server as before. The signature covers the exact bytes of
//! the payload as they stand in the file, after a context string of the document's own, so no
//! signature can pass for another kind of document (or for a license file).

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use std::collections::BTreeMap;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;
use thiserror::Error;

use super::keys::KeyPair;
use crate::sys::hex;

/// One kind of document: its `format` name, the field its payload is under, and its context.
#[derive(Debug)]
pub struct Kind {
    pub format: &'static str,
    pub field: &'static str,
    pub context: &'static [u8],
    /// How the document is called in messages, e.g. "activation request".
    pub name: &'static str,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("the {0} is malformed: {1}")]
    Malformed(&'static str, String),
    #[error("the {0}'s signature is not valid: it was changed after the server made it")]
    BadSignature(&'static str),
}

/// Now, to the second, RFC 3339: when a document was made.
pub fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    crate::sys::timestamp::rfc3339(now.replace_nanosecond(0).unwrap_or(now))
}

/// 128 random bits, hex: a document's nonce, so that two documents are never the same.
pub fn nonce() -> anyhow::Result<String> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
    Ok(hex::lower(&nonce))
}

/// The signed document, as the text of a file.
pub fn sign(kind: &Kind, payload: &impl Serialize, key: &KeyPair) -> anyhow::Result<String> {
    let embedded = serde_json::to_string_pretty(payload)?.replace('\n', "\n  ");
    let signature = key.sign(&[kind.context, embedded.as_bytes()].concat());
    Ok(format!(
        "{{\n  \"format\": \"{}\",\n  \"public_key\": \"{}\",\n  \"{}\": {embedded},\n  \
         \"signature\": \"{}\"\n}}\n",
        kind.format,
        STANDARD.encode(key.public_key().as_bytes()),
        kind.field,
        STANDARD.encode(signature.to_bytes())
    ))
}

/// Checks a document's signature against the key it carries; the payload and that key.
pub fn verify<T: DeserializeOwned>(
    kind: &Kind,
    bytes: &[u8],
) -> Result<(T, VerifyingKey), DocumentError> {
    let malformed = |why: String| DocumentError::Malformed(kind.name, why);
    // The payload is kept as the exact bytes in the file: that is what was signed.
    let mut fields: BTreeMap<String, &RawValue> =
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let mut text = |name: &str| -> Result<String, DocumentError> {
        let raw = fields
            .remove(name)
            .ok_or_else(|| malformed(format!("no {name:?}")))?;
        serde_json::from_str(raw.get()).map_err(|_| malformed(format!("{name:?} is not a string")))
    };
    let (format, public_key, signature) =
        (text("format")?, text("public_key")?, text("signature")?);
    if format != kind.format {
        return Err(malformed(format!(
            "format {format:?} is not {:?}",
            kind.format
        )));
    }
    let payload = fields
        .remove(kind.field)
        .ok_or_else(|| malformed(format!("no {:?}", kind.field)))?;
    if let Some(unknown) = fields.keys().next() {
        return Err(malformed(format!("unknown field {unknown:?}")));
    }
    let key_bytes: [u8; 32] = STANDARD
        .decode(&public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| malformed("public_key is not a base64 Ed25519 key".into()))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| malformed("public_key is not an Ed25519 key".into()))?;
    let signature = STANDARD
        .decode(&signature)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or_else(|| malformed("the signature is not a base64 Ed25519 signature".into()))?;
    let message = [kind.context, payload.get().as_bytes()].concat();
    key.verify(&message, &signature)
        .map_err(|_| DocumentError::BadSignature(kind.name))?;
    let payload = serde_json::from_str(payload.get())
        .map_err(|e| malformed(format!("{}: {e}", kind.field)))?;
    Ok((payload, key))
}
