//! `POST /vendor/v1/ledger-reports`: license servers anchor their ledger's head at the vendor;
//! what the vendor concludes is [`crate::licensing::anchors`]'s.

use axum::{extract::State, http::StatusCode};
use models::{ErrorCode, LedgerReportAnswer, LedgerReportRequest};

use super::state::VendorState;
use crate::{
    http::{AppError, extract::Json},
    licensing::{anchors, ledger_report},
    store::{HeadDecision, HeadOutcome, KeyCheck},
};

/// `POST /vendor/v1/ledger-reports`: a server anchors its ledger's head. No account login: the
/// report's signature is the server's, and it must be the key the vendor knows it by.
pub(super) async fn ledger_report(
    State(state): State<VendorState>,
    Json(request): Json<LedgerReportRequest>,
) -> Result<axum::Json<LedgerReportAnswer>, AppError> {
    let invalid = |why: String| AppError::bad_request(ErrorCode::LedgerReportInvalid, why);
    let (report, key) =
        ledger_report::verify(request.report.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    report
        .ledger
        .check()
        .map_err(|why| invalid(format!("the ledger report is refused: {why}")))?;
    let outcome = anchors::record(
        &state.0.store,
        &report.server_id,
        &key,
        &report.ledger,
        "report",
        KeyCheck::Known,
    )
    .await?;
    match outcome {
        HeadOutcome::Decided(HeadDecision::Record { verdict, detail }) => {
            Ok(axum::Json(LedgerReportAnswer {
                verdict: Some(verdict),
                needs_link: None,
                detail,
            }))
        }
        HeadOutcome::Decided(HeadDecision::AskLink(seq)) => Ok(axum::Json(LedgerReportAnswer {
            verdict: None,
            needs_link: Some(seq),
            detail: format!(
                "nothing recorded: say what the ledger holds at entry {seq}, the last one this \
                 server reported"
            ),
        })),
        HeadOutcome::Unknown => Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ServerUnknown,
            format!(
                "server {} has no activation at this vendor with the key that signed the report",
                report.server_id
            ),
        )),
        HeadOutcome::KeyMismatch => Err(AppError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ServerKeyMismatch,
            format!(
                "the report is not signed with the key server {} reported with before; an \
                 activation with the new key makes it known",
                report.server_id
            ),
        )),
    }
}
