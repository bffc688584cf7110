//! Ledger reports: the head of this server's ledger and a summary of its usage, signed with the
//! server's own key, for its vendor to keep (see `anchoring` for when a server sends one and
//! `vendor::heads` for what the vendor checks).
//!
//! A signed head in the data directory proves nothing against someone who holds the server key
//! (root on the customer's machine can rewrite the ledger and sign a new head). A head kept by
//! the vendor can: once the vendor holds "entry 1200 has hash h", any later report must come from
//! a ledger that still has h at entry 1200. So each report names, besides its head, the hashes
//! its ledger holds now at entries it reported before ([`Link`]s); the vendor compares them with
//! what it kept. A link without a hash says "my ledger no longer holds that entry".
//!
//! The same [`LedgerSummary`] travels inside an offline activation request, which the vendor
//! reads once, without a chance to ask back; an online report can be asked for a link it lacks.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::{
    identity::Identity,
    keys::KeyPair,
    server_document::{self, DocumentError, Kind},
};
use crate::sys::VERSION;

pub const FORMAT: &str = "license-server-ledger-report-v1";
const SIGNING_CONTEXT: &[u8] = b"license-server ledger report v1\n";

/// Links one report carries at most: the server keeps the entries it reported last.
pub const MAX_LINKS: usize = 64;
/// Cartridges one report summarises at most.
pub const MAX_USAGE: usize = 4096;
const MAX_POOL: usize = 128;

/// Where a ledger stands, and what was used up to there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSummary {
    /// The last durable entry and its hash: the head.
    pub seq: u64,
    pub hash: String,
    /// The ledger's hashes at entries reported before.
    pub links: Vec<Link>,
    /// Per cartridge, counted from the ledger's first entry up to the head.
    pub usage: Vec<Usage>,
}

/// "My ledger holds `hash` at entry `seq`"; `hash` absent: it holds no entry `seq` any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The usage of one cartridge (pool, product, major version) up to the head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    pub product_id: u32,
    pub major_version: u32,
    pub runcount_grants: u64,
    pub credit_grants: u64,
    pub used_credits: i64,
    pub refused: u64,
    /// Runcount seats held at the head.
    pub runcount_in_use: u32,
}

/// The signed document: who reports, and its [`LedgerSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerReport {
    #[serde(rename = "serverId")]
    pub server_id: String,
    pub serial_number: String,
    pub version: String,
    /// RFC 3339.
    pub created: String,
    /// 128 random bits, hex.
    pub nonce: String,
    pub ledger: LedgerSummary,
}

pub const KIND: Kind = Kind {
    format: FORMAT,
    field: "report",
    context: SIGNING_CONTEXT,
    name: "ledger report",
};

fn is_hash(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl LedgerSummary {
    /// What a vendor accepts: bounded in size, hashes as the chain writes them, links before
    /// the head. The reason, if not.
    pub fn check(&self) -> Result<(), String> {
        if self.seq == 0 || !is_hash(&self.hash) {
            return Err("the ledger head is not an entry number and a SHA-256 hash".into());
        }
        if self.links.len() > MAX_LINKS {
            return Err(format!("more than {MAX_LINKS} links"));
        }
        if self.usage.len() > MAX_USAGE {
            return Err(format!("more than {MAX_USAGE} cartridges of usage"));
        }
        for link in &self.links {
            if link.seq > self.seq || link.hash.as_deref().is_some_and(|h| !is_hash(h)) {
                return Err(format!(
                    "the link to entry {} is after the head or not a SHA-256 hash",
                    link.seq
                ));
            }
        }
        if self
            .usage
            .iter()
            .any(|u| u.pool.as_ref().is_some_and(|p| p.len() > MAX_POOL))
        {
            return Err(format!("a pool name is longer than {MAX_POOL} bytes"));
        }
        Ok(())
    }

    /// The hash this summary says its ledger holds at `seq`: `Some(None)` for "none any more",
    /// `None` when it says nothing about `seq`.
    pub fn hash_at(&self, seq: u64) -> Option<Option<&str>> {
        if seq == self.seq {
            return Some(Some(&self.hash));
        }
        self.links
            .iter()
            .find(|l| l.seq == seq)
            .map(|l| l.hash.as_deref())
    }
}

/// A new signed report, as the text of a document.
pub fn create(identity: &Identity, key: &KeyPair, ledger: LedgerSummary) -> anyhow::Result<String> {
    let report = LedgerReport {
        server_id: identity.server_id.to_string(),
        serial_number: identity.serial_number.clone(),
        version: VERSION.to_owned(),
        created: server_document::now_text(),
        nonce: server_document::nonce()?,
        ledger,
    };
    server_document::sign(&KIND, &report, key)
}

/// Checks a report's signature against the key it carries; the vendor's side.
pub fn verify(bytes: &[u8]) -> Result<(LedgerReport, VerifyingKey), DocumentError> {
    server_document::verify(&KIND, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> LedgerSummary {
        LedgerSummary {
            seq: 9,
            hash: "a".repeat(64),
            links: vec![
                Link {
                    seq: 4,
                    hash: Some("b".repeat(64)),
                },
                Link { seq: 2, hash: None },
            ],
            usage: vec![Usage {
                pool: None,
                product_id: 1000,
                major_version: 10,
                runcount_grants: 3,
                credit_grants: 0,
                used_credits: 0,
                refused: 1,
                runcount_in_use: 1,
            }],
        }
    }

    #[test]
    fn a_report_verifies_and_an_edited_usage_breaks_it() {
        let key = KeyPair::generate().unwrap();
        let text = create(&Identity::sample("200000511"), &key, summary()).unwrap();
        let (report, public) = verify(text.as_bytes()).unwrap();
        assert_eq!(report.ledger, summary());
        assert_eq!(public, key.public_key());
        let edited = text.replace("\"runcount_grants\": 3", "\"runcount_grants\": 1");
        assert_ne!(edited, text);
        assert_eq!(
            verify(edited.as_bytes()).unwrap_err(),
            DocumentError::BadSignature("ledger report")
        );
    }

    #[test]
    fn a_summary_names_its_hashes_and_out_of_bounds_ones_are_refused() {
        let good = summary();
        good.check().unwrap();
        assert_eq!(good.hash_at(9), Some(Some("a".repeat(64).as_str())));
        assert_eq!(good.hash_at(4), Some(Some("b".repeat(64).as_str())));
        assert_eq!(good.hash_at(2), Some(None));
        assert_eq!(good.hash_at(3), None);
        let mut after_head = summary();
        after_head.links[0].seq = 10;
        let mut not_hex = summary();
        not_hex.hash = "A".repeat(64);
        let mut too_many = summary();
        too_many.links = vec![Link { seq: 1, hash: None }; MAX_LINKS + 1];
        for (bad, why) in [
            (after_head, "after the head"),
            (not_hex, "SHA-256"),
            (too_many, "more than 64 links"),
        ] {
            let err = bad.check().unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
