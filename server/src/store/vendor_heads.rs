//! The vendor service's `ledger_servers` and `ledger_heads` tables: the ledger heads license
//! servers reported, kept so that each new head can be compared with the ones before it. What a
//! head means, and the verdict, are the vendor room's; this module keeps them, in one
//! transaction per head so that two reports of one server are judged one after the other.

use models::HeadVerdict;

use super::{
    database::{StoreError, now_rfc3339, to_sql, write_tx},
    vendor::VendorStore,
};

/// Heads kept per server; older ones go (the server's newest head and first finding stay in
/// `ledger_servers`).
const KEEP_HEADS: i64 = 1000;

/// A head the vendor kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHead {
    pub seq: u64,
    pub hash: String,
    /// RFC 3339.
    pub received: String,
}

/// A head to record.
#[derive(Debug, Clone)]
pub struct NewHead<'a> {
    pub server_id: &'a str,
    /// The server's key (base64), which signed the head.
    pub public_key: &'a str,
    pub seq: u64,
    pub hash: &'a str,
    /// How it came: `report`, `activation` or `offline`.
    pub via: &'a str,
    /// JSON.
    pub usage: &'a str,
}

/// Whose key may record a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// A report: the key the server is known by (from its activation, or its first head).
    Known,
    /// An activation request, which the vendor accepts from a new key too (a server whose data
    /// directory was replaced): the key becomes the one the server is known by.
    Adopt,
}

/// What the vendor room decided, given the server's newest head and the ones kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadDecision {
    Record {
        verdict: HeadVerdict,
        detail: String,
    },
    /// Record nothing: the report must say what its ledger holds at this entry.
    AskLink(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadOutcome {
    Decided(HeadDecision),
    /// A report from a server this vendor never activated nor saw a head of.
    Unknown,
    /// A report signed by another key than the server's.
    KeyMismatch,
}

/// A server as the vendor knows its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerServerRow {
    pub server_id: String,
    pub first_seen: String,
    pub last: KnownHead,
    pub last_verdict: String,
    pub last_usage: String,
    /// The first finding against its history, and when.
    pub finding: Option<(String, String)>,
}

/// One recorded head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRow {
    pub head: KnownHead,
    pub via: String,
    pub verdict: String,
    pub detail: String,
}

type ServerTuple = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn server_row(t: ServerTuple) -> (String, LedgerServerRow) {
    let (server_id, key, first_seen, seq, hash, received, verdict, usage, finding, finding_at) = t;
    (
        key,
        LedgerServerRow {
            server_id,
            first_seen,
            last: KnownHead {
                seq: u64::try_from(seq).unwrap_or(0),
                hash,
                received,
            },
            last_verdict: verdict,
            last_usage: usage,
            finding: finding.zip(finding_at),
        },
    )
}

const SERVER_COLUMNS: &str = "server_id, public_key, first_seen, last_seq, last_hash, \
     last_received, last_verdict, last_usage, finding, finding_at";

impl VendorStore {
    /// Judges `head` with `judge` (given the server's newest head and every kept one) and
    /// records what it decided, if `check` lets the key record.
    pub async fn record_ledger_head(
        &self,
        head: &NewHead<'_>,
        check: KeyCheck,
        judge: impl FnOnce(Option<&KnownHead>, &[KnownHead]) -> HeadDecision,
    ) -> Result<HeadOutcome, StoreError> {
        write_tx(&self.pool, async |conn| {
            let server: Option<ServerTuple> = sqlx::query_as(&format!(
                "SELECT {SERVER_COLUMNS} FROM ledger_servers WHERE server_id = ?1"
            ))
            .bind(head.server_id)
            .fetch_optional(&mut *conn)
            .await?;
            let server = server.map(server_row);
            if check == KeyCheck::Known {
                match &server {
                    Some((key, _)) if key != head.public_key => {
                        return Ok(HeadOutcome::KeyMismatch);
                    }
                    Some(_) => {}
                    None => {
                        // Activated itself, or as a member of a failover network.
                        let activated: i64 = sqlx::query_scalar(
                            "SELECT (SELECT COUNT(*) FROM activations
                                     WHERE server_id = ?1 AND server_public_key = ?2)
                                  + (SELECT COUNT(*) FROM network_members
                                     WHERE server_id = ?1 AND public_key = ?2)",
                        )
                        .bind(head.server_id)
                        .bind(head.public_key)
                        .fetch_one(&mut *conn)
                        .await?;
                        if activated == 0 {
                            return Ok(HeadOutcome::Unknown);
                        }
                    }
                }
            }
            let known: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT seq, hash, received FROM ledger_heads WHERE server_id = ?1 ORDER BY id",
            )
            .bind(head.server_id)
            .fetch_all(&mut *conn)
            .await?;
            let known: Vec<KnownHead> = known
                .into_iter()
                .map(|(seq, hash, received)| KnownHead {
                    seq: u64::try_from(seq).unwrap_or(0),
                    hash,
                    received,
                })
                .collect();
            let decision = judge(server.as_ref().map(|(_, s)| &s.last), &known);
            let HeadDecision::Record { verdict, detail } = &decision else {
                return Ok(HeadOutcome::Decided(decision));
            };
            let now = now_rfc3339();
            let seq = to_sql(head.seq)?;
            if *verdict != HeadVerdict::Same {
                sqlx::query(
                    "INSERT INTO ledger_heads
                        (server_id, seq, hash, received, via, verdict, detail, usage)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .bind(head.server_id)
                .bind(seq)
                .bind(head.hash)
                .bind(&now)
                .bind(head.via)
                .bind(verdict.as_str())
                .bind(detail)
                .bind(head.usage)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "DELETE FROM ledger_heads WHERE server_id = ?1 AND id NOT IN
                        (SELECT id FROM ledger_heads WHERE server_id = ?1
                         ORDER BY id DESC LIMIT ?2)",
                )
                .bind(head.server_id)
                .bind(KEEP_HEADS)
                .execute(&mut *conn)
                .await?;
            }
            let finding = verdict.is_tampering().then_some(detail.as_str());
            sqlx::query(
                "INSERT INTO ledger_servers
                    (server_id, public_key, first_seen, last_seq, last_hash, last_received,
                     last_verdict, last_usage, finding, finding_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?6, ?7, ?8, CASE WHEN ?8 IS NULL THEN NULL ELSE ?3 END)
                 ON CONFLICT (server_id) DO UPDATE SET
                    public_key = excluded.public_key,
                    last_seq = excluded.last_seq,
                    last_hash = excluded.last_hash,
                    last_received = excluded.last_received,
                    last_verdict = excluded.last_verdict,
                    last_usage = excluded.last_usage,
                    finding = coalesce(finding, excluded.finding),
                    finding_at = coalesce(finding_at, excluded.finding_at)",
            )
            .bind(head.server_id)
            .bind(head.public_key)
            .bind(&now)
            .bind(seq)
            .bind(head.hash)
            .bind(verdict.as_str())
            .bind(head.usage)
            .bind(finding)
            .execute(&mut *conn)
            .await?;
            Ok(HeadOutcome::Decided(decision))
        })
        .await
    }

    /// Every server with a recorded head, by id.
    pub async fn ledger_servers(&self) -> Result<Vec<LedgerServerRow>, StoreError> {
        let rows: Vec<ServerTuple> = sqlx::query_as(&format!(
            "SELECT {SERVER_COLUMNS} FROM ledger_servers ORDER BY server_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|t| server_row(t).1).collect())
    }

    /// The heads kept of `server_id`, oldest first.
    pub async fn ledger_heads(&self, server_id: &str) -> Result<Vec<HeadRow>, StoreError> {
        let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT seq, hash, received, via, verdict, detail FROM ledger_heads
             WHERE server_id = ?1 ORDER BY id",
        )
        .bind(server_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, hash, received, via, verdict, detail)| HeadRow {
                head: KnownHead {
                    seq: u64::try_from(seq).unwrap_or(0),
                    hash,
                    received,
                },
                via,
                verdict,
                detail,
            })
            .collect())
    }
}
