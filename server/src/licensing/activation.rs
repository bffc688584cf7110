//! Offline activation requests: what a license server tells its vendor so the vendor can issue a
//! license bound to it, carried as a file when the server cannot reach the vendor.
//!
//! The request is signed with the server's own Ed25519 key (`DATA_DIR/server.key`, made at first
//! start) and carries the public key, so the vendor can check that the file was not edited on the
//! way and, across activations, that it keeps coming from the same server. As with license files,
//! the signature covers the exact bytes of the `request` value as they stand in the file, after a
//! context string of its own (a license signature can never pass for a request, or the reverse).

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
}

/// The error of [`verify`].
pub type ActivationError = DocumentError;

pub const KIND: Kind = Kind {
    format: FORMAT,
    field: "request",
    context: SIGNING_CONTEXT,
    name: "activation request",
};

/// A new signed request, as the text of a file.
pub fn create(
    identity: &Identity,
    key: &KeyPair,
    ledger: Option<LedgerSummary>,
) -> anyhow::Result<String> {
    let request = ActivationRequest {
        server_id: identity.server_id.to_string(),
        serial_number: identity.serial_number.clone(),
        hostname: identity.hostname.clone(),
        platform: identity.platform.clone(),
        version: VERSION.to_owned(),
        created: server_document::now_text(),
        nonce: server_document::nonce()?,
        ledger,
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
        let text = create(&identity, &key, None).unwrap();
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
            create(&identity, &key, None).unwrap(),
            text,
            "a fresh nonce each time"
        );
    }
}
