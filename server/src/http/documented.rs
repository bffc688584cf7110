//! Answers that the extractors give (before a handler runs), as the OpenAPI documents list them:
//! a route that takes a JSON body or an id in its path names these in its `responses(...)`, so
//! its document lists every status it can answer (Schemathesis checks that it does).

#![allow(
    dead_code,
    reason = "descriptions for the OpenAPI documents, never built"
)]

use models::ApiError;

/// A route with a JSON body, when the body is not declared as JSON or does not fit the type. (A
/// body that is not JSON at all is `400 INVALID_JSON`, which each route lists with its own 400s.)
#[derive(Debug, utoipa::IntoResponses)]
pub enum JsonRefused {
    /// UNSUPPORTED_MEDIA_TYPE: the body is not declared as `Content-Type: application/json`
    #[response(status = 415)]
    NotJson(ApiError),
    /// INVALID_JSON: a field is missing, negative, unknown or of the wrong type
    #[response(status = 422)]
    Mistyped(ApiError),
}

/// A route with an id in its path, when the id is not a number.
#[derive(Debug, utoipa::IntoResponses)]
pub enum PathRefused {
    /// INVALID_PATH: an id in the path is not a whole number from 0 to 2^64 - 1
    #[response(status = 400)]
    Invalid(ApiError),
}
