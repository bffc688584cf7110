//! The license file format: how a license is signed, written and checked.
//!
//! A license file is a JSON document a person can read:
//!
//! ```json
//! {
//!   "format": "license-server-license-v1",
//!   "key_id": "3F9A0C12D4E5B6A7",
//!   "license": {
//!     "key": "ACME-0001",
//!     "serverId": "FAB348C4…",
//!     "rules": { "serial_number": 200000512, "issued": "…", "products": [ … ] }
//!   },
//!   "signature": "base64 Ed25519 signature"
//! }
//! ```
//!
//! The signature covers the **exact bytes** of the `license` value as they stand in the file
//! (prefixed by a fixed context string, so a signature made for anything else can never pass for
//! a license). Nothing is re-serialised or canonicalised before checking: what was signed is what
//! is read, byte for byte, and any change (a digit, a space, a line ending) breaks the signature.
//! The license content is parsed only after its signature checked out, so a forged file never
//! reaches the JSON parser of the rules.
//!
//! Checks come in a fixed order, each with its own error code: well-formed envelope, trusted key,
//! valid signature, well-formed license, bound to this server, not expired.

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::Signature;
use models::ErrorCode;
use models::{License, ProductRule};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use thiserror::Error;
use time::OffsetDateTime;

use super::{
    identity::ServerId,
    keys::{KeyPair, TrustedKeys},
};
use crate::sys::{hex, timestamp::rfc3339};

pub const FORMAT: &str = "license-server-license-v1";

/// Prepended to the license bytes before signing: domain separation from anything else a vendor
/// key might ever sign.
const SIGNING_CONTEXT: &[u8] = b"license-server license v1\n";

/// A license file is a few kilobytes; anything much larger is not one.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// Longest license key. Keys name files, so they are kept short and plain.
pub const MAX_KEY_LEN: usize = 64;

/// More credits than anyone could use (31,000 years of processing), low enough that sums over
/// many licenses never overflow.
pub const MAX_CREDITS: u64 = 1_000_000_000_000;

/// Largest serial number: the largest integer a JavaScript client (a monitoring script, the web
/// app's JSON) reads exactly.
pub const MAX_SERIAL: u64 = (1 << 53) - 1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LicenseError {
    /// Not even the start of one: binary, or text that is not a JSON document (a certificate, an
    /// e-mail, a picture chosen by mistake).
    #[error("this is not a license file (expected a JSON document starting with {{)")]
    NotALicense,
    #[error("the license file is malformed: {0}")]
    Malformed(String),
    #[error(
        "the license file is signed with key {key_id}, which this server does not trust \
         (trusted: {trusted}); start it with --vendor-public-key naming the vendor's public key"
    )]
    UntrustedKey { key_id: String, trusted: String },
    #[error(
        "the license file's signature is not valid: the file was changed after it was signed \
         (even a space or a line ending counts) or it was not signed by the vendor"
    )]
    BadSignature,
    #[error("the license is bound to server {license_server}, not to this server ({this_server})")]
    WrongServer {
        license_server: String,
        this_server: String,
    },
    #[error("the license expired on {expires}")]
    Expired { expires: String },
    #[error(
        "a different license with the key {key} is already installed, issued at the same time or \
         later; only a newer issue of a license replaces it, so this file is refused"
    )]
    KeyConflict { key: String },
    #[error(
        "serial number {serial_number} is already installed, from license {installed_key}; one \
         serial is one license, so this file (license {key}) is refused. Remove {installed_key} \
         first if this one is to take its place"
    )]
    DuplicateSerial {
        serial_number: u64,
        key: String,
        installed_key: String,
    },
}

impl LicenseError {
    /// The stable error code of the admin API and of `license verify`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotALicense | Self::Malformed(_) => ErrorCode::LicenseMalformed,
            Self::UntrustedKey { .. } => ErrorCode::LicenseUntrustedKey,
            Self::BadSignature => ErrorCode::LicenseBadSignature,
            Self::WrongServer { .. } => ErrorCode::LicenseWrongServer,
            Self::Expired { .. } => ErrorCode::LicenseExpired,
            Self::KeyConflict { .. } => ErrorCode::LicenseKeyConflict,
            Self::DuplicateSerial { .. } => ErrorCode::DuplicateSerial,
        }
    }
}

fn malformed(why: impl Into<String>) -> LicenseError {
    LicenseError::Malformed(why.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    format: String,
    key_id: String,
    #[serde(borrow)]
    license: &'a RawValue,
    signature: String,
}

/// A license file whose signature checked out and that is bound to this server. Whether it has
/// expired is a question of when you ask: see [`models::Rules::expired_at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub license: License,
    pub key_id: String,
    /// SHA-256 of the whole file, hex: tells two files with the same key apart.
    pub sha256: String,
}

/// Checks a license file completely, as an install must: everything [`verify_signed`] checks, and
/// that it has not expired at `now`.
pub fn verify(
    bytes: &[u8],
    trusted: &TrustedKeys,
    server_id: &ServerId,
    now: OffsetDateTime,
) -> Result<Verified, LicenseError> {
    let verified = verify_signed(bytes, trusted, server_id)?;
    if verified.license.rules.expired_at(now) {
        return Err(LicenseError::Expired {
            expires: rfc3339(verified.license.rules.expires.unwrap_or(now)),
        });
    }
    Ok(verified)
}

/// Checks a license file except for its expiry: well-formed, signed by a trusted key, bound to
/// `server_id`. An installed license that expires later stays installed (and listed); it only
/// stops counting.
pub fn verify_signed(
    bytes: &[u8],
    trusted: &TrustedKeys,
    server_id: &ServerId,
) -> Result<Verified, LicenseError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(malformed(format!(
            "{} bytes is far too large for a license file",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| LicenseError::NotALicense)?;
    // A byte-order mark, as some editors write, is not part of the document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().starts_with('{') {
        return Err(LicenseError::NotALicense);
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    if envelope.format != FORMAT {
        return Err(malformed(format!(
            "format {:?} is not {FORMAT:?} (is this a license file, or one for a newer server?)",
            envelope.format
        )));
    }
    let signature = STANDARD
        .decode(&envelope.signature)
        .ok()
        .and_then(|raw| Signature::from_slice(&raw).ok())
        .ok_or_else(|| malformed("the signature is not a base64 Ed25519 signature"))?;
    let message = signed_message(envelope.license.get().as_bytes());
    match trusted.verify(&envelope.key_id, &message, &signature) {
        None => {
            let ids: Vec<_> = trusted.ids().map(|id| id.as_str()).collect();
            return Err(LicenseError::UntrustedKey {
                key_id: envelope.key_id,
                trusted: if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                },
            });
        }
        Some(false) => return Err(LicenseError::BadSignature),
        Some(true) => {}
    }
    let license: License = serde_json::from_str(envelope.license.get())
        .map_err(|e| malformed(format!("license: {e}")))?;
    check_rules(&license)?;
    if license.server_id != server_id.as_str() {
        return Err(LicenseError::WrongServer {
            license_server: license.server_id,
            this_server: server_id.to_string(),
        });
    }
    Ok(Verified {
        license,
        key_id: envelope.key_id,
        sha256: hex::lower(&Sha256::digest(bytes)),
    })
}

/// Reads the license out of a file without checking anything but its shape: for tools that only
/// need to know which serial numbers exist, never for granting.
pub fn peek(bytes: &[u8]) -> Option<License> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).ok()?;
    serde_json::from_str(envelope.license.get()).ok()
}

/// What a well-formed license looks like beyond its JSON shape. The vendor tool runs the same
/// checks before signing, so a vendor cannot issue a file that servers would refuse.
pub fn check_rules(license: &License) -> Result<(), LicenseError> {
    check_key(&license.key)?;
    ServerId::parse(license.server_id.clone())
        .map_err(|_| malformed("serverId must be the server's id in uppercase hex"))?;
    let rules = &license.rules;
    if !(1..=MAX_SERIAL).contains(&rules.serial_number) {
        return Err(malformed(format!(
            "serial_number must be an integer from 1 to {MAX_SERIAL}"
        )));
    }
    if let Some(expires) = rules.expires
        && expires <= rules.issued
    {
        return Err(malformed("expires must be later than issued"));
    }
    if rules.products.is_empty() {
        return Err(malformed("the license grants no product"));
    }
    for (i, product) in rules.products.iter().enumerate() {
        check_product(product)?;
        let duplicate = rules.products[..i].iter().any(|other| {
            (other.product_id, other.major_version) == (product.product_id, product.major_version)
        });
        if duplicate {
            return Err(malformed(format!(
                "product {} major version {} is listed twice",
                product.product_id, product.major_version
            )));
        }
    }
    Ok(())
}

pub fn check_key(key: &str) -> Result<(), LicenseError> {
    let plain = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if key.is_empty() || key.len() > MAX_KEY_LEN || !plain || key.starts_with('.') {
        return Err(malformed(format!(
            "the license key {key:?} must be 1 to {MAX_KEY_LEN} letters, digits, '-', '_' or '.', \
             not starting with '.'"
        )));
    }
    Ok(())
}

fn check_product(product: &ProductRule) -> Result<(), LicenseError> {
    let name = &product.product;
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(malformed(format!(
            "product {}: the name must be 1 to 200 characters without control characters",
            product.product_id
        )));
    }
    if product.credits > MAX_CREDITS {
        return Err(malformed(format!(
            "product {}: {} credits is more than the maximum {MAX_CREDITS}",
            product.product_id, product.credits
        )));
    }
    if product.runcount == 0 && product.credits == 0 && !product.postpay {
        return Err(malformed(format!(
            "product {} major version {} grants nothing: no runcount, no credits, not postpay",
            product.product_id, product.major_version
        )));
    }
    Ok(())
}

fn signed_message(license_bytes: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, license_bytes].concat()
}

/// Signs `license` and returns the license file's text. The license is checked first with the
/// same rules a server applies.
pub fn sign(license: &License, key: &KeyPair) -> Result<String, LicenseError> {
    check_rules(license)?;
    let pretty = serde_json::to_string_pretty(license)
        .map_err(|e| malformed(format!("cannot serialise the license: {e}")))?;
    // Indented to sit inside the envelope; JSON strings hold no raw newlines, so only the layout
    // changes. These indented bytes are exactly what is signed.
    let embedded = pretty.replace('\n', "\n  ");
    let signature = key.sign(&signed_message(embedded.as_bytes()));
    Ok(format!(
        "{{\n  \"format\": \"{FORMAT}\",\n  \"key_id\": \"{}\",\n  \"license\": {embedded},\n  \
         \"signature\": \"{}\"\n}}\n",
        key.key_id(),
        STANDARD.encode(signature.to_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use models::Rules;
    use proptest::prelude::*;
    use time::Duration;

    use super::*;

    struct Fixture {
        key: KeyPair,
        trusted: TrustedKeys,
        server_id: ServerId,
    }

    fn fixture() -> Fixture {
        let key = KeyPair::generate().unwrap();
        let mut trusted = TrustedKeys::default();
        trusted.add(key.public_key());
        Fixture {
            key,
            trusted,
            server_id: ServerId::generate().unwrap(),
        }
    }

    fn license(server_id: &ServerId) -> License {
        License {
            key: "ACME-0001".into(),
            server_id: server_id.to_string(),
            rules: Rules {
                serial_number: 200_000_512,
                issued: OffsetDateTime::now_utc() - Duration::days(1),
                expires: Some(OffsetDateTime::now_utc() + Duration::days(365)),
                max_users: Some(25),
                products: vec![
                    ProductRule {
                        product_id: 1000,
                        major_version: 10,
                        product: "callas pdfToolbox CLI".into(),
                        runcount: 8,
                        credits: 0,
                        postpay: false,
                    },
                    ProductRule {
                        product_id: 1000,
                        major_version: 0,
                        product: "callas pdfToolbox CLI".into(),
                        runcount: 0,
                        credits: 100_000,
                        postpay: true,
                    },
                ],
            },
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn a_valid_file_round_trips() {
        let f = fixture();
        let original = license(&f.server_id);
        let text = sign(&original, &f.key).unwrap();
        let verified = verify(text.as_bytes(), &f.trusted, &f.server_id, now()).unwrap();
        assert_eq!(verified.license, original);
        assert_eq!(verified.key_id, f.key.key_id().as_str());
        // People read these files: the license is laid out, not one long line.
        assert!(text.contains("\n    \"key\": \"ACME-0001\",\n"), "{text}");
    }

    #[test]
    fn every_bit_flip_anywhere_in_the_file_is_rejected() {
        let f = fixture();
        let text = sign(&license(&f.server_id), &f.key).unwrap();
        let mut bytes = text.into_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                bytes[i] ^= 1 << bit;
                let result = verify(&bytes, &f.trusted, &f.server_id, now());
                assert!(
                    result.is_err(),
                    "flipping bit {bit} of byte {i} was accepted: {}",
                    String::from_utf8_lossy(&bytes)
                );
                bytes[i] ^= 1 << bit;
            }
        }
        verify(&bytes, &f.trusted, &f.server_id, now()).unwrap();
    }

    #[test]
    fn a_changed_value_with_valid_json_is_a_bad_signature() {
        let f = fixture();
        let text = sign(&license(&f.server_id), &f.key).unwrap();
        for (from, to) in [
            ("\"runcount\": 8", "\"runcount\": 9"),
            ("\"max_users\": 25", "\"max_users\": 250"),
            ("\n", "\r\n"),
        ] {
            let tampered = text.replace(from, to);
            assert_ne!(tampered, text);
            let err = verify(tampered.as_bytes(), &f.trusted, &f.server_id, now()).unwrap_err();
            assert_eq!(err, LicenseError::BadSignature, "{from} → {to}");
        }
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        let f = fixture();
        let other_vendor = KeyPair::generate().unwrap();

        let untrusted = sign(&license(&f.server_id), &other_vendor).unwrap();
        let err = verify(untrusted.as_bytes(), &f.trusted, &f.server_id, now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::LicenseUntrustedKey);
        assert!(err.to_string().contains(other_vendor.key_id().as_str()));

        // Signed by another key while claiming the trusted key's id.
        let forged = untrusted.replace(other_vendor.key_id().as_str(), f.key.key_id().as_str());
        let err = verify(forged.as_bytes(), &f.trusted, &f.server_id, now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::LicenseBadSignature);

        let other_server = ServerId::generate().unwrap();
        let elsewhere = sign(&license(&other_server), &f.key).unwrap();
        let err = verify(elsewhere.as_bytes(), &f.trusted, &f.server_id, now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::LicenseWrongServer);
        assert!(err.to_string().contains(other_server.as_str()));

        let mut old = license(&f.server_id);
        old.rules.issued = now() - Duration::days(400);
        old.rules.expires = Some(now() - Duration::days(35));
        let expired = sign(&old, &f.key).unwrap();
        let err = verify(expired.as_bytes(), &f.trusted, &f.server_id, now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::LicenseExpired);
        // Still a genuine license: it is listed as installed but expired, and stops counting.
        verify_signed(expired.as_bytes(), &f.trusted, &f.server_id).unwrap();

        for garbage in [&b""[..], b"{}", b"\xff\xfe", b"[1,2]", b"license"] {
            let err = verify(garbage, &f.trusted, &f.server_id, now()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::LicenseMalformed, "{garbage:?}");
        }
        // What is not even the start of a license says so, not what the JSON parser expected.
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        for not_one in [
            &png[..],
            b"",
            b"-----BEGIN CERTIFICATE-----",
            b"[1,2]",
            b"\xff\xfe",
        ] {
            let err = verify(not_one, &f.trusted, &f.server_id, now()).unwrap_err();
            assert_eq!(
                err.to_string(),
                "this is not a license file (expected a JSON document starting with {)",
                "{not_one:?}"
            );
        }
        // A byte-order mark before a genuine license is not in the way.
        let genuine = sign(&license(&f.server_id), &f.key).unwrap();
        verify(
            format!("\u{feff}{genuine}").as_bytes(),
            &f.trusted,
            &f.server_id,
            now(),
        )
        .unwrap();
        let err = verify(
            &vec![b' '; MAX_FILE_BYTES + 1],
            &f.trusted,
            &f.server_id,
            now(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[test]
    fn the_vendor_cannot_sign_a_license_a_server_would_refuse() {
        let f = fixture();
        type Change = fn(&mut License);
        let cases: [(&str, Change); 6] = [
            ("license key", |l| l.key = "../etc/passwd".into()),
            ("serverId", |l| l.server_id = "not hex".into()),
            ("later than issued", |l| {
                l.rules.expires = Some(l.rules.issued)
            }),
            ("grants no product", |l| l.rules.products.clear()),
            ("listed twice", |l| {
                let first = l.rules.products[0].clone();
                l.rules.products.push(first);
            }),
            ("grants nothing", |l| {
                let p = &mut l.rules.products[0];
                (p.runcount, p.credits, p.postpay) = (0, 0, false);
            }),
        ];
        for (expected, change) in cases {
            let mut bad = license(&f.server_id);
            change(&mut bad);
            let err = sign(&bad, &f.key).unwrap_err();
            assert_eq!(err.code(), ErrorCode::LicenseMalformed);
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
    }

    proptest! {
        /// The fuzz target of the parser: any bytes at all give an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let f = fixture();
            prop_assert!(verify(&bytes, &f.trusted, &f.server_id, now()).is_err());
            let _ = peek(&bytes);
        }

        /// Structured garbage gets much further into the parser than random bytes do.
        #[test]
        fn arbitrary_envelopes_never_panic(
            format in "\\PC{0,30}",
            key_id in "[0-9A-F]{0,20}",
            license in "\\PC{0,300}",
            signature in "[A-Za-z0-9+/=]{0,100}",
        ) {
            let f = fixture();
            let doc = serde_json::json!({
                "format": format, "key_id": key_id, "license": license, "signature": signature,
            });
            let bytes = serde_json::to_vec(&doc).unwrap();
            prop_assert!(verify(&bytes, &f.trusted, &f.server_id, now()).is_err());
        }
    }
}
