//! Session tokens: 122 random bits from the OS CSPRNG as a UUID; the store keeps only their
//! SHA-256, so a copy of the store lets nobody log in.

use sha2::{Digest, Sha256};

use crate::sys::hex;

/// A session token: a version-4 UUID from the OS CSPRNG.
pub fn new_token() -> anyhow::Result<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
    Ok(uuid::Builder::from_random_bytes(random)
        .into_uuid()
        .to_string())
}

/// What the store keeps of a token: its SHA-256, lowercase hex.
pub fn token_hash(token: &str) -> String {
    hex::lower(&Sha256::digest(token.as_bytes()))
}

/// A principal as text: a JSON string as it is, any other JSON value as its JSON.
pub fn principal_text(principal: &serde_json::Value) -> String {
    match principal {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
