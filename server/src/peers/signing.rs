//! How a member's endpoints check a call and authenticate their answer: the call must come from
//! a member of the network ([`crate::failover::envelope`]), or it is `401 MEMBER_REFUSED` before
//! its body is even parsed; the answer is authenticated together with the call's MAC.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use models::ErrorCode;

use crate::{
    failover::{
        calls::Peers,
        envelope::{self, MEMBER, SIGNATURE, TIME},
    },
    http::AppError,
};

/// Checks that a call to `path` with `body` is signed by a member: the call's signature, which
/// the answer is signed with.
pub fn check(
    peers: &Peers,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<envelope::Signed, AppError> {
    let refused = |why: String| {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::MemberRefused,
            format!("refused: {why}"),
        )
    };
    let call = envelope::read_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(|e| refused(e.to_string()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    peers
        .trust()
        .verify_call(path, &call, body, now)
        .map_err(|e| refused(e.to_string()))?;
    Ok(call)
}

/// The answer `bytes` (JSON) to the call `call` to `path`, signed by this member.
pub fn signed(
    peers: &Peers,
    path: &str,
    call: &envelope::Signed,
    bytes: Vec<u8>,
) -> Result<Response, AppError> {
    let signed = peers
        .trust()
        .sign_answer(path, call, &bytes)
        .map_err(anyhow::Error::from)?;
    let value = |text: String| HeaderValue::from_str(&text).map_err(anyhow::Error::from);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static(MEMBER),
                value(signed.member.to_string())?,
            ),
            (
                header::HeaderName::from_static(TIME),
                value(signed.time.to_string())?,
            ),
            (
                header::HeaderName::from_static(SIGNATURE),
                value(signed.signature)?,
            ),
        ],
        bytes,
    )
        .into_response())
}
