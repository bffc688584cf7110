//! The one error shape of the HTTP API, `{"error": {"code", "message"}}`, and the codes it carries.
//!
//! The codes are one enum, [`ErrorCode`], used by the server that sends them, the CLI and the web
//! app that read them: no code is spelled as a string literal anywhere else. On the wire a code is
//! a plain string, so a client of this version still reads the codes of a newer server (as text;
//! [`ApiError::code`] is `None` for a code it does not know).

use serde::{Deserialize, Serialize};

/// Body of every 4xx/5xx answer of the API.
///
/// `code` is stable and meant for programs (`"INVALID_POOL_ID"`); `message` is meant for people and
/// may change wording between versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody {
                code: code.as_str().to_owned(),
                message: message.into(),
            },
        }
    }

    /// The code, when it is one this version knows.
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.error.code)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error.message, self.error.code)
    }
}

impl std::error::Error for ApiError {}

/// Defines [`ErrorCode`] with its wire text, once per code.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// Every error code of the API, by the name it has on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &[Self] = &[$(Self::$variant,)*];

            /// The code as it stands in an answer: `"NO_LICENSE_AVAILABLE"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }
    };
}

error_codes! {
    // Requests the server cannot read.
    /// The body is not the JSON the operation takes (a field missing, of the wrong type, ...).
    InvalidJson = "INVALID_JSON",
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE",
    PayloadTooLarge = "PAYLOAD_TOO_LARGE",
    InvalidPath = "INVALID_PATH",
    InvalidQuery = "INVALID_QUERY",
    InvalidBody = "INVALID_BODY",
    /// Not HTTP/1.1 that the server can parse (answered by the HTTP parser, before routing).
    InvalidRequest = "INVALID_REQUEST",
    UriTooLong = "URI_TOO_LONG",
    /// Headers over the parser's limits (their size, or more than 100).
    HeadersTooLarge = "HEADERS_TOO_LARGE",
    NotFound = "NOT_FOUND",
    MethodNotAllowed = "METHOD_NOT_ALLOWED",
    /// Something broke on the server's side; its log has the details.
    Internal = "INTERNAL",
    /// The port holds as many connections as it takes, or this address as many as one may.
    TooManyConnections = "TOO_MANY_CONNECTIONS",
    /// The request took longer than the API port gives one (30 s); nothing was half-done: a
    /// change is either recorded whole or not at all.
    RequestTimeout = "REQUEST_TIMEOUT",
    // The license protocol.
    InvalidHost = "INVALID_HOST",
    InvalidUser = "INVALID_USER",
    InvalidMessage = "INVALID_MESSAGE",
    InvalidPoolId = "INVALID_POOL_ID",
    InvalidRequestId = "INVALID_REQUEST_ID",
    UnknownSession = "UNKNOWN_SESSION",
    /// A call on a session without `Authorization: Bearer SESSION_TOKEN`.
    SessionTokenRequired = "SESSION_TOKEN_REQUIRED",
    /// A token that is not the session's.
    SessionTokenWrong = "SESSION_TOKEN_WRONG",
    UnknownProduct = "UNKNOWN_PRODUCT",
    UnknownLicense = "UNKNOWN_LICENSE",
    NoLicenseAvailable = "NO_LICENSE_AVAILABLE",
    SessionEnded = "SESSION_ENDED",
    LedgerUnavailable = "LEDGER_UNAVAILABLE",
    // Logins and permissions.
    LoginDenied = "LOGIN_DENIED",
    TooManyAttempts = "TOO_MANY_ATTEMPTS",
    Unauthenticated = "UNAUTHENTICATED",
    SessionExpired = "SESSION_EXPIRED",
    Forbidden = "FORBIDDEN",
    LicenseUserLimit = "LICENSE_USER_LIMIT",
    // Licenses.
    LicenseKeyNotFound = "LICENSE_KEY_NOT_FOUND",
    LicenseUserNotFound = "LICENSE_USER_NOT_FOUND",
    LicenseMalformed = "LICENSE_MALFORMED",
    LicenseUntrustedKey = "LICENSE_UNTRUSTED_KEY",
    LicenseBadSignature = "LICENSE_BAD_SIGNATURE",
    LicenseWrongServer = "LICENSE_WRONG_SERVER",
    LicenseExpired = "LICENSE_EXPIRED",
    LicenseKeyConflict = "LICENSE_KEY_CONFLICT",
    DuplicateSerial = "DUPLICATE_SERIAL",
    // The vendor licensing service.
    VendorNotConfigured = "VENDOR_NOT_CONFIGURED",
    VendorUnreachable = "VENDOR_UNREACHABLE",
    VendorRefused = "VENDOR_REFUSED",
    VendorLicenseRefused = "VENDOR_LICENSE_REFUSED",
    LicensingSessionNotFound = "LICENSING_SESSION_NOT_FOUND",
    ActivationLimit = "ACTIVATION_LIMIT",
    ActivationNotFound = "ACTIVATION_NOT_FOUND",
    DeactivationReceiptInvalid = "DEACTIVATION_RECEIPT_INVALID",
    ReceiptKeyMismatch = "RECEIPT_KEY_MISMATCH",
    ActivationRequestInvalid = "ACTIVATION_REQUEST_INVALID",
    /// A ledger report that is malformed, badly signed or out of bounds.
    LedgerReportInvalid = "LEDGER_REPORT_INVALID",
    /// A ledger report from a server the vendor has never activated or seen.
    ServerUnknown = "SERVER_UNKNOWN",
    /// A ledger report signed by another key than the one the server activated with.
    ServerKeyMismatch = "SERVER_KEY_MISMATCH",
    /// A call between members of a failover network that is not signed by a member.
    MemberRefused = "MEMBER_REFUSED",
    /// A member of a failover network without a coordinator that a majority stands behind: it
    /// grants and changes nothing until there is one again.
    NoQuorum = "NO_QUORUM",
    /// The admin API's network calls on a server that is no failover network's member.
    NotANetwork = "NOT_A_NETWORK",
    /// A members' list that is not one (a bad member, none of the members kept).
    NetworkMembersInvalid = "NETWORK_MEMBERS_INVALID",
    /// The network did not take a change of its members (a new member did not catch up).
    NetworkChangeFailed = "NETWORK_CHANGE_FAILED",
}

impl ErrorCode {
    /// The code named `text`, if this version knows it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_none_is_spelled_twice() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            let text = code.as_str();
            assert!(
                text.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{text}"
            );
        }
        let mut texts: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn a_code_of_a_newer_server_is_kept_as_text() {
        let body = r#"{"error":{"code":"SOMETHING_NEW","message":"m"}}"#;
        let error: ApiError = serde_json::from_str(body).unwrap();
        assert_eq!(error.code(), None);
        assert_eq!(error.to_string(), "m (SOMETHING_NEW)");
        let known = ApiError::new(ErrorCode::SessionEnded, "gone");
        assert_eq!(
            serde_json::to_value(&known).unwrap()["error"]["code"],
            "SESSION_ENDED"
        );
        assert_eq!(known.code(), Some(ErrorCode::SessionEnded));
    }
}
