//! What the fuzz targets (`fuzz/`, `make fuzz`) call: every parser that reads bytes a stranger
//! can hand the server or the vendor service, each with the checks the server runs after it.
//! A target passes the fuzzer's bytes in; any panic (or a broken invariant, asserted here) is a
//! finding. Nothing here is used by the server itself.
//!
//! - [`license_file`]: a license file, as `license install` and the admin API's install read it;
//! - [`activation_request`]: an offline activation request, as the vendor's `issue --request`
//!   reads it, and a ledger report, as the vendor service reads it from anyone;
//! - [`vendor_catalog`]: a vendor catalog (TOML), as `license-vendor serve` reads it;
//! - [`protocol_body`]: the JSON bodies of the license protocol and the admin login;
//! - [`ledger_row`]: a ledger row as the store gives it back, linked correctly, so the decoder
//!   behind the hash is what gets fuzzed.

use std::sync::OnceLock;

use models::{LoginRequest, OpenSession, RequestLicense};
use time::OffsetDateTime;

use crate::{
    engine,
    ledger::{
        chain::{GENESIS_HASH, chain_hash},
        verify::check_row,
    },
    licensing::{
        activation, file,
        identity::ServerId,
        keys::{KeyPair, TrustedKeys},
        ledger_report,
    },
    store::LedgerRow,
    vendor::catalog::Catalog,
};

/// A vendor key this process trusts, and a server id licenses must be bound to.
struct Trust {
    key: KeyPair,
    trusted: TrustedKeys,
    server_id: ServerId,
}

fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let key = KeyPair::generate().expect("the OS gives random bytes");
        let mut trusted = TrustedKeys::default();
        trusted.add(key.public_key());
        let server_id = ServerId::generate().expect("the OS gives random bytes");
        Trust {
            key,
            trusted,
            server_id,
        }
    })
}

/// Reads `bytes` as a license file. A file that verifies must have been signed by the trusted
/// key: the fuzzer cannot forge a signature, so a pass here that the key did not sign is a bug.
pub fn license_file(bytes: &[u8]) {
    let trust = trust();
    let _ = file::peek(bytes);
    let now = OffsetDateTime::now_utc();
    if let Ok(verified) = file::verify(bytes, &trust.trusted, &trust.server_id, now) {
        let again = file::sign(&verified.license, &trust.key).expect("a verified license signs");
        assert!(
            file::verify_signed(again.as_bytes(), &trust.trusted, &trust.server_id).is_ok(),
            "a license that verified does not verify once signed again"
        );
    }
}

/// Reads `bytes` as an offline activation request; one that verifies names its server.
pub fn activation_request(bytes: &[u8]) {
    if let Ok((request, _key)) = activation::verify(bytes) {
        assert!(
            !request.server_id.is_empty(),
            "a verified request names its server"
        );
        if let Some(ledger) = &request.ledger {
            ledger_summary(ledger);
        }
    }
    if let Ok((report, _key)) = ledger_report::verify(bytes) {
        ledger_summary(&report.ledger);
    }
}

/// The vendor's bounds on a ledger summary: one that passes them is as small as they say.
fn ledger_summary(ledger: &ledger_report::LedgerSummary) {
    if ledger.check().is_ok() {
        assert!(ledger.links.len() <= ledger_report::MAX_LINKS);
        assert!(ledger.usage.len() <= ledger_report::MAX_USAGE);
        assert!(ledger.links.iter().all(|l| l.seq <= ledger.seq));
    }
}

/// Reads `bytes` as a vendor catalog.
pub fn vendor_catalog(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = Catalog::parse(text);
    }
}

/// Reads `bytes` as each JSON body of the license protocol and the admin login, and runs the
/// checks the engine runs on what parses.
pub fn protocol_body(bytes: &[u8]) {
    if let Ok(open) = serde_json::from_slice::<OpenSession>(bytes)
        && let Some(user) = &open.user
        && engine::check_user(user).is_ok()
    {
        assert!(!user.realm.is_empty() && !user.principal.chars().any(char::is_control));
    }
    let _ = serde_json::from_slice::<RequestLicense>(bytes);
    let _ = serde_json::from_slice::<LoginRequest>(bytes);
}

/// Reads `bytes` as a ledger row: the first line is the time, the second the kind, the rest the
/// body; linked onto the genesis hash, so only the decoding can refuse it.
pub fn ledger_row(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (Some(at), Some(kind), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let row = LedgerRow {
        seq: 1,
        at: at.to_owned(),
        kind: kind.to_owned(),
        body: body.to_owned(),
        prev_hash: GENESIS_HASH.to_owned(),
        hash: chain_hash(GENESIS_HASH, 1, at, body),
    };
    if let Ok(entry) = check_row(&row, 1, GENESIS_HASH) {
        assert_eq!(entry.event.kind(), kind, "the decoded kind is the row's");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each target takes what it is seeded with (`fuzz/seeds/`), so a corpus that rots is noticed
    /// by `cargo test`, not only by a fuzzing run.
    #[test]
    fn the_targets_take_their_seeds() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 5] = [
            ("license_file", license_file),
            ("activation_request", activation_request),
            ("vendor_catalog", vendor_catalog),
            ("protocol_body", protocol_body),
            ("ledger_row", ledger_row),
        ];
        for (name, target) in targets {
            let dir = seeds.join(name);
            let files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| entry.unwrap().path())
                .collect();
            assert!(!files.is_empty(), "no seeds for {name}");
            for file in files {
                target(&std::fs::read(&file).unwrap());
            }
        }
    }
}
