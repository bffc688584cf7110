//! Cartridge pools, as selected by the `X-Pool-ID` request header.
//!
//! Without the header (or with an empty one) a request sees the default pool: the cartridges that
//! are assigned to no pool. A named pool sees only its own cartridges.

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::error::AppError;

pub const HEADER: &str = "x-pool-id";

/// Longest pool name, in bytes: pool names are labels, and the header should not be a way to make
/// the server carry megabytes around.
pub const MAX_LEN: usize = 64;

/// The pool a request is about. `None` = the default pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool(pub Option<String>);

impl Pool {
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Validates a header value; leading and trailing spaces are not part of the name.
    pub fn parse(raw: &[u8]) -> Result<Self, AppError> {
        let invalid = |why: String| {
            AppError::bad_request(
                "INVALID_POOL_ID",
                format!("invalid X-Pool-ID header: {why}"),
            )
        };
        let text = std::str::from_utf8(raw).map_err(|_| invalid("not UTF-8".into()))?;
        let name = check_name(text).map_err(invalid)?;
        Ok(Self(name.map(str::to_owned)))
    }
}

/// A pool name as a header or `cartridge assign` gives it: trimmed; empty = the default pool.
pub fn check_name(text: &str) -> Result<Option<&str>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".to_owned());
    }
    Ok(Some(text))
}

impl<S: Send + Sync> FromRequestParts<S> for Pool {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let mut values = parts.headers.get_all(HEADER).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(Self(None)),
            (Some(value), None) => Self::parse(value.as_bytes()),
            (Some(_), Some(_)) => Err(AppError::bad_request(
                "INVALID_POOL_ID",
                "invalid X-Pool-ID header: given more than once",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_the_default_pool_and_names_are_trimmed() {
        assert_eq!(Pool::parse(b"").unwrap(), Pool(None));
        assert_eq!(Pool::parse(b"   ").unwrap(), Pool(None));
        assert_eq!(
            Pool::parse(b" render farm ").unwrap().name(),
            Some("render farm")
        );
        assert_eq!(
            Pool::parse("Zürich".as_bytes()).unwrap().name(),
            Some("Zürich")
        );
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(Pool::parse(&[0xff, 0xfe]).is_err());
        assert!(Pool::parse("a".repeat(MAX_LEN + 1).as_bytes()).is_err());
        assert!(Pool::parse("a".repeat(MAX_LEN).as_bytes()).is_ok());
    }
}
