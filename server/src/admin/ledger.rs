//! The ledger's export as a download for administrators (VIEW): the same CSV or JSON lines as
//! `license-server ledger export`, with the same filters, streamed.
//!
//! The export is written batch by batch into a bounded channel that the response body reads, so
//! a download of years of history holds a few batches in memory, and a client that reads slowly
//! slows the export rather than filling memory. Every entry is checked on the way, as `ledger
//! verify` does; if one fails after the answer has started, the body ends with an error instead
//! of its last chunk, so the client sees a broken transfer, never a short export that looks
//! complete.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use http_body::Frame;
use models::{
    ApiError, ErrorCode, LedgerExportFormat, LedgerExportQuery, MAX_EXPORT_KINDS, MAX_EXPORT_TIME,
};
use tokio::sync::mpsc;

use super::extract::{Refused, SessionToken, Viewer};
use crate::{
    app::AppState,
    http::{AppError, extract::Query},
    ledger::export::{Export, Filter, Format, parse_kinds, parse_time},
};

/// Chunks (one per batch of entries) waiting for the client.
const QUEUED_CHUNKS: usize = 4;

/// The ledger's entries, checked, as CSV or JSON lines: a download for billing or audits.
#[utoipa::path(
    get, path = "/server/manage/ledger/export", tag = "ledger",
    params(SessionToken, LedgerExportQuery),
    responses(
        (status = 200, description = "the export, streamed, as an attachment", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        Refused,
        (status = 400, description = "INVALID_QUERY: a time that is not RFC 3339 or a day, or an unknown kind", body = ApiError),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    _: Viewer,
    Query(query): Query<LedgerExportQuery>,
) -> Result<Response, AppError> {
    let invalid = |why: String| AppError::bad_request(ErrorCode::InvalidQuery, why);
    let too_long = |text: &Option<String>, most: usize| {
        text.as_ref().is_some_and(|t| t.chars().count() > most)
    };
    if too_long(&query.since, MAX_EXPORT_TIME) || too_long(&query.until, MAX_EXPORT_TIME) {
        return Err(invalid(format!(
            "since and until are at most {MAX_EXPORT_TIME} characters"
        )));
    }
    if too_long(&query.kind, MAX_EXPORT_KINDS) {
        return Err(invalid(format!(
            "kind is at most {MAX_EXPORT_KINDS} characters"
        )));
    }
    let filter = Filter {
        since: query
            .since
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(invalid)?,
        until: query
            .until
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(invalid)?,
        kinds: query
            .kind
            .as_deref()
            .map(parse_kinds)
            .transpose()
            .map_err(invalid)?
            .unwrap_or_default(),
    };
    let (format, content_type, file) = match query.format {
        LedgerExportFormat::Csv => (
            Format::Csv,
            "text/csv; charset=utf-8",
            "attachment; filename=\"ledger.csv\"",
        ),
        LedgerExportFormat::Jsonl => (
            Format::Jsonl,
            "application/x-ndjson",
            "attachment; filename=\"ledger.jsonl\"",
        ),
    };
    let (chunks, receiver) = mpsc::channel(QUEUED_CHUNKS);
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut export = Export::new(&store, format, filter);
        loop {
            let sent = match export.next_chunk().await {
                Ok(Some(chunk)) => chunks.send(Ok(Bytes::from(chunk))).await,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "the ledger export stopped");
                    let _ = chunks
                        .send(Err(io::Error::other("the ledger failed verification")))
                        .await;
                    return;
                }
            };
            // The client went away: stop reading the ledger.
            if sent.is_err() {
                return;
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, file),
        ],
        Body::new(Chunks(receiver)),
    )
        .into_response())
}

/// The response body: the chunks as the export task sends them.
struct Chunks(mpsc::Receiver<io::Result<Bytes>>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}
