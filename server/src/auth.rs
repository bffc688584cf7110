//! Administrators of the admin API: passwords, session tokens, permissions, and the login rate
//! limit.
//!
//! - Passwords are stored as argon2id PHC strings. A login for an unknown principal still runs a
//!   full argon2 verification (against a dummy hash), so the answer time does not tell whether
//!   the principal exists; neither does the answer, which is the same `401` either way.
//! - A session token is a UUID made of 122 bits from the OS CSPRNG. The store keeps only its
//!   SHA-256, so a copy of the store lets nobody log in; the looked-up hash is compared again in
//!   constant time. Tokens live in the store, so they survive a restart; they end after
//!   `idle` without use (each use refreshes it) or 12 hours after login, whichever comes first.
//! - Failed logins are counted per principal and per client address; after [`MAX_FAILURES`] in
//!   [`FAILURE_WINDOW`], further attempts get `429` with `Retry-After` until the oldest failure
//!   ages out (even with the right password: that is the point).
//! - Permissions are `{scope}.VIEW_LICENSE` and `{scope}.EDIT_LICENSE`. An `admin` holds both, a
//!   `viewer` only VIEW. A user without a scope holds them as `server.*`, which grants them for
//!   every scope; a user with a scope holds them for that scope only. The admin API's own scope is
//!   [`SCOPE`].

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
};
use axum::{
    extract::FromRequestParts,
    http::{StatusCode, request::Parts},
};
use models::{AuthUser, LoginAnswer, LoginRequest, ServerVersion, UserInfo};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::{
    error::AppError,
    ledger::Event,
    state::AppState,
    store::{AdminUserRow, Admission, Store, TokenRow},
};

pub const TOKEN_HEADER: &str = "x-ak-session-id";
pub const LOCAL_REALM: &str = "local";
/// The scope that grants a permission for every scope.
pub const ALL_SCOPES: &str = "server";
/// The admin API's application scope: a user limited to this scope may use it.
pub const SCOPE: &str = "license";
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 3600);
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How stale a token's stored last use may get before a request writes it back.
const TOUCH_EVERY: time::Duration = time::Duration::seconds(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    View,
    Edit,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Self::View => "VIEW_LICENSE",
            Self::Edit => "EDIT_LICENSE",
        }
    }
}

/// The permissions of a role, as the login answer lists them.
pub fn permissions(role: Role, scope: Option<&str>) -> Vec<String> {
    let scope = scope.unwrap_or(ALL_SCOPES);
    let held: &[Permission] = match role {
        Role::Admin => &[Permission::View, Permission::Edit],
        Role::Viewer => &[Permission::View],
    };
    held.iter()
        .map(|p| format!("{scope}.{}", p.name()))
        .collect()
}

/// A logged-in administrator, as a request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    pub principal: String,
    pub realm: String,
    pub role: Role,
    pub scope: Option<String>,
}

impl AdminSession {
    pub fn allows(&self, permission: Permission) -> bool {
        let scope_ok = match self.scope.as_deref() {
            None | Some(ALL_SCOPES) | Some(SCOPE) => true,
            Some(_) => false,
        };
        scope_ok && (self.role == Role::Admin || permission == Permission::View)
    }

    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(AppError::status(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!(
                    "{} may not do this: it needs {SCOPE}.{} (or {ALL_SCOPES}.{})",
                    self.principal,
                    permission.name(),
                    permission.name()
                ),
            ))
        }
    }

    /// Who did it, for the ledger.
    pub fn actor(&self) -> String {
        format!("{}@{}", self.principal, self.realm)
    }
}

/// argon2id with the crate's defaults (19 MiB, 2 passes), salt from the OS CSPRNG.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?
        .to_string())
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Verified against when the principal does not exist, so that takes as long as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a password anyone has").unwrap_or_default());

/// A new random password for the first administrator: 24 characters from 57, about 140 bits.
pub fn random_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
    // 256 is not a multiple of 57; the bias of a modulo over one byte is below 1 in 4 per
    // character and costs under 2 bits of the 140.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// A session token: a version-4 UUID from the OS CSPRNG.
pub fn new_token() -> anyhow::Result<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
    Ok(uuid::Builder::from_random_bytes(random)
        .into_uuid()
        .to_string())
}

pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sliding-window counts of failed logins.
#[derive(Debug, Default)]
struct Failures {
    by_key: HashMap<String, VecDeque<Instant>>,
}

impl Failures {
    /// How long until `key` may try again, if it is locked out now.
    fn locked(&mut self, key: &str, now: Instant) -> Option<Duration> {
        let times = self.by_key.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES {
            times
                .front()
                .map(|oldest| FAILURE_WINDOW.saturating_sub(now.duration_since(*oldest)))
        } else {
            None
        }
    }

    fn record(&mut self, key: &str, now: Instant) {
        self.by_key
            .entry(key.to_owned())
            .or_default()
            .push_back(now);
        // Forget keys that went quiet, so a flood of made-up names cannot grow this forever.
        if self.by_key.len() > 100_000 {
            self.by_key.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
            });
        }
    }
}

/// The login rate limit and the secret check, shared by the admin API and the vendor service.
#[derive(Debug, Default)]
pub struct LoginGate {
    failures: Mutex<Failures>,
}

impl LoginGate {
    /// Checks `secret` against `hash` for an attempt known by `keys` (the principal, the client
    /// address). `hash` is `None` for an unknown principal: a dummy hash is verified instead, so
    /// that takes as long. `Err(429)` while any key is locked out (even with the right secret);
    /// `Ok(false)` after recording a failure against every key.
    pub async fn check(
        &self,
        keys: &[String],
        hash: Option<String>,
        secret: &serde_json::Value,
    ) -> Result<bool, AppError> {
        let now = Instant::now();
        let wait = {
            let mut failures = self.lock();
            keys.iter().filter_map(|k| failures.locked(k, now)).max()
        };
        if let Some(wait) = wait {
            return Err(too_many(wait));
        }
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let text = secret.as_str().unwrap_or_default().to_owned();
        let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &text))
            .await
            .unwrap_or(false);
        let ok = known && matches && secret.is_string();
        if !ok {
            let mut failures = self.lock();
            for key in keys {
                failures.record(key, now);
            }
        }
        Ok(ok)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A principal as text: a JSON string as it is, any other JSON value as its JSON.
pub fn principal_text(principal: &serde_json::Value) -> String {
    match principal {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug)]
pub struct Auth {
    store: Store,
    /// Idle timeout of a token.
    pub idle: Duration,
    gate: LoginGate,
}

impl Auth {
    pub fn new(store: Store, idle: Duration) -> Self {
        Self {
            store,
            idle,
            gate: LoginGate::default(),
        }
    }

    /// Creates the first administrator, `admin` with a random password, if there is no
    /// administrator at all. Returns the password when it did.
    pub async fn create_first_admin(&self) -> anyhow::Result<Option<String>> {
        if !self.store.admin_users().await?.is_empty() {
            return Ok(None);
        }
        let password = random_password()?;
        let hash = tokio::task::spawn_blocking({
            let password = password.clone();
            move || hash_password(&password)
        })
        .await??;
        let user = AdminUserRow {
            principal: "admin".into(),
            password_hash: hash,
            role: Role::Admin.as_str().into(),
            scope: None,
        };
        let event = Event::AdminUserChanged {
            principal: "admin".into(),
            change: "added".into(),
            role: Some("admin".into()),
            by: "first start".into(),
        };
        let added = self
            .store
            .add_first_admin_user(&user, event.row(OffsetDateTime::now_utc()))
            .await?;
        Ok(added.then_some(password))
    }

    /// Logs in. `limit`: the active license's licensed-user limit.
    pub async fn login(
        &self,
        request: LoginRequest,
        peer: IpAddr,
        limit: Option<u32>,
    ) -> Result<LoginAnswer, AppError> {
        let realm = request
            .realm
            .clone()
            .unwrap_or_else(|| LOCAL_REALM.to_owned());
        let principal = principal_text(&request.principal);
        let keys = [
            format!("principal:{realm}:{principal}"),
            format!("peer:{peer}"),
        ];
        let user = if realm == LOCAL_REALM {
            self.store.admin_user(&principal).await?
        } else {
            None
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.gate.check(&keys, hash, &request.secret).await?;
        let Some(user) = user.filter(|_| ok) else {
            return Err(AppError::status(
                StatusCode::UNAUTHORIZED,
                "LOGIN_DENIED",
                "login denied: unknown principal or wrong secret",
            ));
        };
        let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
        admit(&self.store, &realm, &principal, limit).await?;

        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
        let token = uuid::Builder::from_random_bytes(random)
            .into_uuid()
            .to_string();
        let at = OffsetDateTime::now_utc();
        self.store
            .insert_token(&TokenRow {
                token_hash: token_hash(&token),
                principal: principal.clone(),
                realm: realm.clone(),
                created: at,
                last_used: at,
            })
            .await?;
        Ok(LoginAnswer {
            token,
            timeout: u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX),
            user: AuthUser {
                id: principal,
                realm,
                info: UserInfo::default(),
            },
            properties: serde_json::Map::new(),
            permissions: permissions(role, user.scope.as_deref()),
            status: ServerVersion {
                server_version: crate::VERSION.to_owned(),
            },
        })
    }

    /// The administrator a token belongs to, refreshing its idle time.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<AdminSession, AppError> {
        let token = token
            .map(str::trim)
            .filter(|t| uuid::Uuid::parse_str(t).is_ok())
            .ok_or_else(unauthenticated)?;
        let hash = token_hash(token);
        let row = self.store.token(&hash).await?.ok_or_else(unauthenticated)?;
        if !bool::from(row.token_hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(unauthenticated());
        }
        let now = OffsetDateTime::now_utc();
        let idle = time::Duration::try_from(self.idle).unwrap_or(time::Duration::MAX);
        let lifetime = time::Duration::try_from(ABSOLUTE_LIFETIME).unwrap_or(time::Duration::MAX);
        if now - row.last_used > idle || now - row.created > lifetime {
            self.store.delete_token(&hash).await?;
            return Err(AppError::status(
                StatusCode::UNAUTHORIZED,
                "SESSION_EXPIRED",
                "the session token expired; log in again with POST /server/auth",
            ));
        }
        // The user may have been removed or changed since the login.
        let user = match row.realm.as_str() {
            LOCAL_REALM => self.store.admin_user(&row.principal).await?,
            _ => None,
        }
        .ok_or_else(unauthenticated)?;
        if now - row.last_used > TOUCH_EVERY {
            self.store.touch_token(&hash, now).await?;
        }
        Ok(AdminSession {
            principal: row.principal,
            realm: row.realm,
            role: Role::parse(&user.role).unwrap_or(Role::Viewer),
            scope: user.scope,
        })
    }

    pub async fn logout(&self, token: Option<&str>) -> Result<(), AppError> {
        self.authenticate(token).await?;
        let token = token.map(str::trim).unwrap_or_default();
        self.store.delete_token(&token_hash(token)).await?;
        Ok(())
    }
}

/// Counts `(realm, principal)` as a licensed user, or refuses it when the license's limit is
/// reached.
pub async fn admit(
    store: &Store,
    realm: &str,
    principal: &str,
    limit: Option<u32>,
) -> Result<(), AppError> {
    match store
        .admit_licensed_user(realm, principal, OffsetDateTime::now_utc(), limit)
        .await?
    {
        Admission::Known | Admission::Added => Ok(()),
        Admission::Refused { limit } => Err(AppError::status(
            StatusCode::FORBIDDEN,
            "LICENSE_USER_LIMIT",
            format!(
                "the license allows {limit} licensed users and all places are taken; an \
                 administrator can clear users"
            ),
        )),
    }
}

fn unauthenticated() -> AppError {
    AppError::status(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "no valid session token in X-Ak-Session-Id; log in with POST /server/auth",
    )
}

fn too_many(wait: Duration) -> AppError {
    AppError::TooManyRequests {
        retry_after: wait.as_secs().max(1),
    }
}

/// An administrator with `VIEW_LICENSE`.
#[derive(Debug)]
pub struct Viewer(pub AdminSession);

/// An administrator with `EDIT_LICENSE`.
#[derive(Debug)]
pub struct Editor(pub AdminSession);

async fn session_of(parts: &Parts, state: &AppState) -> Result<AdminSession, AppError> {
    let token = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    state.auth.authenticate(token).await
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = session_of(parts, state).await?;
        session.require(Permission::View)?;
        Ok(Self(session))
    }
}

impl FromRequestParts<AppState> for Editor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = session_of(parts, state).await?;
        session.require(Permission::Edit)?;
        Ok(Self(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_scopes_grant_what_they_say() {
        let session = |role, scope: Option<&str>| AdminSession {
            principal: "p".into(),
            realm: "local".into(),
            role,
            scope: scope.map(str::to_owned),
        };
        assert!(session(Role::Admin, None).allows(Permission::Edit));
        assert!(session(Role::Viewer, None).allows(Permission::View));
        assert!(!session(Role::Viewer, None).allows(Permission::Edit));
        assert!(session(Role::Admin, Some(SCOPE)).allows(Permission::Edit));
        assert!(!session(Role::Admin, Some("other-app")).allows(Permission::View));
        assert_eq!(
            permissions(Role::Viewer, Some("other-app")),
            ["other-app.VIEW_LICENSE"]
        );
        assert_eq!(
            permissions(Role::Admin, None),
            ["server.VIEW_LICENSE", "server.EDIT_LICENSE"]
        );
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn five_failures_in_a_minute_lock_out_until_the_oldest_ages() {
        let mut failures = Failures::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(failures.locked("k", t0 + Duration::from_secs(i)), None);
            failures.record("k", t0 + Duration::from_secs(i));
        }
        let wait = failures.locked("k", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(failures.locked("other", t0), None);
        assert_eq!(failures.locked("k", t0 + Duration::from_secs(60)), None);
    }
}
