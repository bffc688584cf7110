//! Sending ledger reports to the vendor: one now ([`report`]), and then periodically ([`run`]).

use std::time::Duration;

use anyhow::{Context, bail};
use models::{ApiError, ErrorCode, HeadVerdict, LedgerReportAnswer, LedgerReportRequest};
use reqwest::Method;
use tokio_util::sync::CancellationToken;

use super::{reported, summary::summary};
use crate::{app::AppState, licensing::ledger_report};

/// The longest wait before trying again after a report failed (the vendor was down).
const RETRY_AFTER: Duration = Duration::from_secs(600);

/// What became of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// The vendor recorded head `seq`.
    Recorded {
        seq: u64,
        verdict: HeadVerdict,
        detail: String,
    },
    /// The vendor does not know this server (no license activated online yet).
    Unknown(String),
    /// The ledger is empty: nothing to report.
    Nothing,
}

/// Reports the ledger's head to the vendor, linking to the entry it asks about if it does.
pub async fn report(state: &AppState) -> anyhow::Result<Reported> {
    let mut also = None;
    for _ in 0..2 {
        let Some(ledger) = summary(state, also).await? else {
            return Ok(Reported::Nothing);
        };
        let seq = ledger.seq;
        let report = ledger_report::create(&state.identity, &state.server_key, ledger)?;
        match send(state, report).await? {
            Ok(LedgerReportAnswer {
                verdict: Some(verdict),
                detail,
                ..
            }) => {
                reported::remember_in(state, seq).await?;
                return Ok(Reported::Recorded {
                    seq,
                    verdict,
                    detail,
                });
            }
            Ok(LedgerReportAnswer {
                needs_link: Some(link),
                ..
            }) if also.is_none() => also = Some(link),
            Ok(answer) => bail!("the vendor answered the ledger report oddly: {answer:?}"),
            Err(error) if error.code() == Some(ErrorCode::ServerUnknown) => {
                return Ok(Reported::Unknown(error.error.message));
            }
            Err(error) => bail!("the vendor refused the ledger report: {error}"),
        }
    }
    bail!("the vendor asked twice for a link to an earlier ledger entry")
}

/// POSTs a report; the vendor's answer, or its refusal.
async fn send(
    state: &AppState,
    report: String,
) -> anyhow::Result<Result<LedgerReportAnswer, ApiError>> {
    let vendor = state
        .vendor
        .as_ref()
        .context("no vendor licensing service is configured (--vendor-url)")?;
    let request = LedgerReportRequest { report };
    let answer = vendor
        .call(
            Method::POST,
            "/vendor/v1/ledger-reports",
            None,
            Some(&request),
        )
        .await
        .map_err(|why| {
            anyhow::anyhow!(
                "the vendor licensing service at {} could not be reached: {why}",
                vendor.url
            )
        })?;
    Ok(answer.map_err(|(_, error)| error))
}

/// Reports at once, then every `every` until `shutdown`; after a failure, again within
/// [`RETRY_AFTER`].
pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = every;
        match report(&state).await {
            Ok(Reported::Recorded {
                seq,
                verdict,
                detail,
            }) if verdict.is_tampering() => {
                tracing::error!(
                    seq,
                    verdict = verdict.as_str(),
                    "the vendor found this server's ledger history changed: {detail}"
                );
            }
            Ok(Reported::Recorded { seq, verdict, .. }) => {
                tracing::info!(
                    seq,
                    verdict = verdict.as_str(),
                    "ledger head anchored at the vendor"
                );
            }
            Ok(Reported::Unknown(why)) => {
                tracing::info!(%why, "the vendor does not know this server yet (no license activated online); its ledger head is anchored from the first activation on");
            }
            Ok(Reported::Nothing) => {}
            Err(e) => {
                wait = every.min(RETRY_AFTER);
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_in_s = wait.as_secs(),
                    "cannot report the ledger's head to the vendor"
                );
            }
        }
    }
}
