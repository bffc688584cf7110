//! The app's own addresses, for links and redirects.

/// The status page; `/` and `/status/` lead here.
pub const STATUS_PATH: &str = "/status/index.html";
/// The admin login form; `?next=` says where to go afterwards.
pub const LOGIN_PATH: &str = "/admin/login";
/// The first admin screen.
pub const LICENSES_PATH: &str = "/admin/licenses";
