//! Deactivation receipts: a license server's signed statement that it gave a license back, for a
//! transfer when the server cannot reach the vendor.
//!
//! `license deactivate KEY` removes the license (in the ledger, like `license remove`) and writes
//! the receipt, signed with the server's own key: the same key that signed the activation request
//! the license was issued for, so the vendor can tell the receipt comes from that server and not
//! from someone who only knows its id. The vendor then frees the activation
//! (`POST /vendor/v1/deactivations`, or by hand after `license-vendor check-receipt`).

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    dir::Installed,
    keys::KeyPair,
    server_document::{self, DocumentError, Kind},
};
use crate::sys::timestamp::rfc3339;

pub const KIND: Kind = Kind {
    format: "license-server-deactivation-receipt-v1",
    field: "receipt",
    context: b"license-server deactivation receipt v1\n",
    name: "deactivation receipt",
};

/// What the server gave back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The server id the license was bound to.
    #[serde(rename = "serverId")]
    pub server_id: String,
    pub key: String,
    pub serial_number: u64,
    /// The SHA-256 of the license file that was removed.
    pub license_sha256: String,
    /// RFC 3339.
    pub deactivated: String,
    /// 128 random bits, hex: two receipts are never the same document.
    pub nonce: String,
}

/// A receipt for `removed`, signed with the server's `key`, as the text of a file.
pub fn create(removed: &Installed, key: &KeyPair, now: OffsetDateTime) -> anyhow::Result<String> {
    let license = &removed.verified.license;
    let receipt = Receipt {
        server_id: license.server_id.clone(),
        key: license.key.clone(),
        serial_number: license.rules.serial_number,
        license_sha256: removed.verified.sha256.clone(),
        deactivated: rfc3339(now.replace_nanosecond(0).unwrap_or(now)),
        nonce: server_document::nonce()?,
    };
    server_document::sign(&KIND, &receipt, key)
}

/// Checks a receipt's signature against the key it carries; the vendor's side.
pub fn verify(bytes: &[u8]) -> Result<(Receipt, VerifyingKey), DocumentError> {
    server_document::verify(&KIND, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licensing::{dir::tests::fixture, install::Installation};

    #[test]
    fn a_receipt_verifies_with_the_servers_key_and_any_change_breaks_it() {
        let f = fixture();
        let Installation::Installed(installed) = f.write(&f.file("K", 1), &[]).unwrap() else {
            panic!("not installed");
        };
        let key = KeyPair::generate().unwrap();
        let text = create(&installed, &key, OffsetDateTime::now_utc()).unwrap();
        let (receipt, signer) = verify(text.as_bytes()).unwrap();
        assert_eq!(
            (receipt.key.as_str(), receipt.server_id.as_str()),
            ("K", f.server_id.as_str())
        );
        assert_eq!(receipt.license_sha256, installed.verified.sha256);
        assert_eq!(signer, key.public_key());
        let edited = text.replace("\"K\"", "\"L\"");
        assert_eq!(
            verify(edited.as_bytes()).unwrap_err(),
            DocumentError::BadSignature("deactivation receipt")
        );
        // Another kind of signed document never passes for a receipt.
        let request = text.replace(KIND.format, crate::licensing::activation::FORMAT);
        assert!(matches!(
            verify(request.as_bytes()),
            Err(DocumentError::Malformed(..))
        ));
    }
}
