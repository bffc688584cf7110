//! Who may do what: administrators of the admin API, their passwords and session tokens, their
//! permissions, the login rate limit, and the licensed users counted against a license.
//!
//! - [`passwords`]: argon2id hashes, never the passwords; [`tokens`]: random tokens, stored hashed;
//! - [`gate`]: the login rate limit and the secret check (also the vendor service's);
//! - [`logins`]: the first administrator, login, authenticating a token, logout;
//! - [`roles`]: roles, scopes and permissions; [`licensed_users`]: the user limit;
//! - [`error`]: why a request was refused.
//!
//! This room knows nothing of HTTP: the admin API's extractors (`admin::extract`) read the token
//! from the request and ask [`Auth::authenticate`].

pub mod error;
pub mod gate;
pub mod licensed_users;
pub mod logins;
pub mod passwords;
pub mod roles;
pub mod tokens;

pub use self::{
    error::AuthError,
    gate::LoginGate,
    logins::Auth,
    roles::{AdminSession, Permission, Role},
};
