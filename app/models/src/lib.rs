//! Wire types of the license server: what goes over HTTP between the server, the web app and the
//! monitoring scripts of our customers.
//!
//! Every type that appears on the wire is defined here exactly once and used by both sides, so the
//! server and the app cannot drift apart. The field names follow the contracts in `shared/spec/`
//! and are binding: renaming a field here is a breaking change for every `curl | jq` script out
//! there. This crate therefore depends on nothing but `serde` and `time`, and compiles for
//! `wasm32-unknown-unknown`.

pub mod admin;
pub mod browse;
pub mod error;
pub mod headers;
pub mod license;
pub mod network;
pub mod protocol;
pub mod status;
pub mod usage;
pub mod vendor;
pub mod whole;

pub use admin::{
    AuthUser, InstallAnswer, LedgerExportFormat, LedgerExportQuery, LicenseAnswer, LicenseHistory,
    LicenseIssue, LicensedUser, LicensedUsers, LicensedUsersAnswer, LoginAnswer, LoginRequest,
    MAX_EXPORT_KINDS, MAX_EXPORT_TIME, ServerVersion, UserInfo,
};
pub use browse::{
    CartridgeHistory, HISTORY_HOURS, History, MAX_FILTER, MAX_PAGE, Sample, SessionPage,
    SessionQuery, SessionSort, SortOrder,
};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use license::{License, ProductRule, Rules};
pub use network::{
    MAX_MEMBER_TOKEN, MAX_NETWORK_MEMBERS, NetworkMemberView, NetworkMembersRequest, NetworkView,
};
pub use protocol::{
    Granted, OpenSession, Released, RequestLicense, RequestType, SessionClosed, SessionOpened, User,
};
pub use status::{
    Build, Cartridge, CartridgeStatistic, FailedByReason, HeldLicense, LicenseCounts, LicenseType,
    Location, RefusalReason, Server, ServerMoved, ServerStatus, Session, SessionStatus, StatusData,
};
pub use usage::{
    MAX_USAGE_DAYS, MAX_USAGE_HOURLY_DAYS, USAGE_TOP, UsageCartridge, UsageParty, UsageQuery,
    UsageRefusals, UsageReport, UsageSeries, UsageStep,
};
pub use vendor::{
    ActivateRequest, Activated, Activation, DeactivateRequest, Deactivated, HeadVerdict,
    LedgerReportAnswer, LedgerReportRequest, RemoteLicense, RemoteLicenses, RemoteRules,
    VendorService,
};
