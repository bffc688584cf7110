//! The vendor's side of anchored ledger heads: license servers report where their ledger stands
//! (a signed [`super::ledger_report`], or the ledger part of an activation request), and the vendor
//! keeps each server's heads and checks that every new one extends the last.
//!
//! A server's own signed head stops someone who edits its database; it cannot stop someone who
//! also holds the server's key (root on the customer's machine), who can rewrite the ledger and
//! sign a new head. The vendor's copy can: the vendor knew "entry 1200 has hash h" before the
//! rewrite, and a ledger rewritten at or before entry 1200 holds another hash there. So
//! [`judge`] compares what a report says its ledger holds (its head, and its links at entries
//! reported before) with every head kept of that server:
//!
//! - a head before the last kept one, or "I hold no entry N" for a kept N: **truncated**;
//! - another hash at a kept entry: **rewritten**;
//! - after the last kept head and holding it: **extends**; the very same head: **same**;
//! - after the last head without saying what the ledger holds there: an online report is
//!   asked for that link ([`models::LedgerReportAnswer::needs_link`]) and records nothing until it
//!   answers; an offline request, read once, is recorded as **unlinked** (not checked).
//!
//! A finding (rewritten, truncated) is kept with the server until the vendor looks into it,
//! logged as a warning, and listed by `license-vendor ledger-heads`. Reports are authenticated by
//! the server's signature alone (servers report without an account login): the key must be the
//! one the server activated with, or the one its first head came with.

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::VerifyingKey;
use models::HeadVerdict;

use super::ledger_report::LedgerSummary;
use crate::store::{
    HeadDecision, HeadOutcome, KeyCheck, KnownHead, NewHead, StoreError, VendorStore,
};

/// Compares `summary` with the server's newest kept head `last` and every kept head `known`;
/// `can_ask`: whether the sender can be asked for a missing link (an online report can).
pub fn judge(
    last: Option<&KnownHead>,
    known: &[KnownHead],
    summary: &LedgerSummary,
    can_ask: bool,
) -> HeadDecision {
    let record = |verdict, detail: String| HeadDecision::Record { verdict, detail };
    let Some(last) = last else {
        return record(
            HeadVerdict::First,
            format!("the first head of this server: entry {}", summary.seq),
        );
    };
    if summary.seq < last.seq {
        return record(
            HeadVerdict::Truncated,
            format!(
                "the ledger was cut short: it ends at entry {}, and the server reported entry {} \
                 on {}",
                summary.seq, last.seq, last.received
            ),
        );
    }
    for kept in known.iter().chain(std::iter::once(last)) {
        match summary.hash_at(kept.seq) {
            Some(Some(hash)) if hash != kept.hash => {
                return record(
                    HeadVerdict::Rewritten,
                    format!(
                        "the ledger's history was rewritten: entry {} had another hash when the \
                         server reported it on {}",
                        kept.seq, kept.received
                    ),
                );
            }
            Some(None) => {
                return record(
                    HeadVerdict::Truncated,
                    format!(
                        "the ledger no longer holds entry {}, which the server reported on {}",
                        kept.seq, kept.received
                    ),
                );
            }
            _ => {}
        }
    }
    if summary.seq == last.seq {
        return record(
            HeadVerdict::Same,
            format!("the head the vendor has: entry {}", last.seq),
        );
    }
    match summary.hash_at(last.seq) {
        Some(_) => record(
            HeadVerdict::Extends,
            format!(
                "entry {} extends entry {}, reported on {}",
                summary.seq, last.seq, last.received
            ),
        ),
        None if can_ask => HeadDecision::AskLink(last.seq),
        None => record(
            HeadVerdict::Unlinked,
            format!(
                "not checked: the request does not say what the ledger holds at entry {}, the \
                 last one the server reported (on {})",
                last.seq, last.received
            ),
        ),
    }
}

/// Records the head of `summary`, which `key` signed for `server_id`, judged against that
/// server's kept heads.
pub async fn record(
    store: &VendorStore,
    server_id: &str,
    key: &VerifyingKey,
    summary: &LedgerSummary,
    via: &str,
    check: KeyCheck,
) -> Result<HeadOutcome, StoreError> {
    let public_key = STANDARD.encode(key.as_bytes());
    let usage = serde_json::to_string(&summary.usage)
        .unwrap_or_else(|e| unreachable!("usage always serialises: {e}"));
    let head = NewHead {
        server_id,
        public_key: &public_key,
        seq: summary.seq,
        hash: &summary.hash,
        via,
        usage: &usage,
    };
    let can_ask = via == "report";
    let outcome = store
        .record_ledger_head(&head, check, |last, known| {
            judge(last, known, summary, can_ask)
        })
        .await?;
    if let HeadOutcome::Decided(HeadDecision::Record { verdict, detail }) = &outcome {
        if verdict.is_tampering() {
            tracing::warn!(
                server_id,
                seq = summary.seq,
                via,
                verdict = verdict.as_str(),
                "{detail}"
            );
        } else {
            tracing::info!(
                server_id,
                via,
                "ledger head {} recorded: {detail}",
                summary.seq
            );
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licensing::ledger_report::Link;

    fn kept(seq: u64, hash: &str) -> KnownHead {
        KnownHead {
            seq,
            hash: hash.repeat(64),
            received: "2026-12-01T00:00:00Z".into(),
        }
    }

    fn summary(seq: u64, hash: &str, links: &[(u64, Option<&str>)]) -> LedgerSummary {
        LedgerSummary {
            seq,
            hash: hash.repeat(64),
            links: links
                .iter()
                .map(|(seq, hash)| Link {
                    seq: *seq,
                    hash: hash.map(|h| h.repeat(64)),
                })
                .collect(),
            usage: Vec::new(),
        }
    }

    fn verdict(decision: &HeadDecision) -> Option<HeadVerdict> {
        match decision {
            HeadDecision::Record { verdict, .. } => Some(*verdict),
            HeadDecision::AskLink(_) => None,
        }
    }

    #[test]
    fn each_kind_of_history_gets_its_verdict() {
        let known = [kept(5, "a"), kept(9, "b")];
        let last = &known[1];
        let cases = [
            (
                summary(12, "c", &[(9, Some("b"))]),
                Some(HeadVerdict::Extends),
            ),
            (summary(9, "b", &[]), Some(HeadVerdict::Same)),
            (summary(9, "x", &[]), Some(HeadVerdict::Rewritten)),
            (
                summary(12, "c", &[(9, Some("x"))]),
                Some(HeadVerdict::Rewritten),
            ),
            // The last head matches, an older kept one does not.
            (
                summary(12, "c", &[(9, Some("b")), (5, Some("x"))]),
                Some(HeadVerdict::Rewritten),
            ),
            (summary(7, "d", &[]), Some(HeadVerdict::Truncated)),
            (summary(12, "c", &[(9, None)]), Some(HeadVerdict::Truncated)),
            (summary(12, "c", &[(5, Some("a"))]), None),
        ];
        for (report, expected) in cases {
            let decision = judge(Some(last), &known, &report, true);
            assert_eq!(verdict(&decision), expected, "{report:?}: {decision:?}");
        }
        assert_eq!(
            judge(Some(last), &known, &summary(12, "c", &[]), true),
            HeadDecision::AskLink(9)
        );
        assert_eq!(
            verdict(&judge(Some(last), &known, &summary(12, "c", &[]), false)),
            Some(HeadVerdict::Unlinked)
        );
        assert_eq!(
            verdict(&judge(None, &[], &summary(3, "a", &[]), true)),
            Some(HeadVerdict::First)
        );
    }

    #[test]
    fn a_rewrite_names_the_entry_and_when_it_was_reported() {
        let known = [kept(9, "b")];
        let HeadDecision::Record { detail, .. } = judge(
            Some(&known[0]),
            &known,
            &summary(12, "c", &[(9, Some("x"))]),
            true,
        ) else {
            panic!("not recorded");
        };
        assert_eq!(
            detail,
            "the ledger's history was rewritten: entry 9 had another hash when the server \
             reported it on 2026-12-01T00:00:00Z"
        );
    }
}
