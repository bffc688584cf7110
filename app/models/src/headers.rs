//! The request headers of the API, by name, for the server that reads them and the clients that
//! send them. HTTP header names are case-insensitive; these are spelled as the documentation
//! spells them.

/// The admin session token of `POST /server/auth`, on every admin call.
pub const SESSION_TOKEN: &str = "X-Ak-Session-Id";

/// The vendor licensing service's token, on the admin API's `remote/...` calls and on the vendor
/// service's own.
pub const LICENSING_TOKEN: &str = "X-Lic-Session-Id";

/// The cartridge pool a request is about; without it, the default pool.
pub const POOL: &str = "X-Pool-ID";
