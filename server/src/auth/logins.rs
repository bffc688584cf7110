//! Administrators' logins: the first administrator, logging in, the token a request carries, and
//! logging out.
//!
//! A token lives in the store, so it survives a restart; it ends after `idle` without use (each
//! use refreshes it) or [`ABSOLUTE_LIFETIME`] after login, whichever comes first. The looked-up
//! hash is compared again in constant time. A wrong secret and an unknown principal get the same
//! answer.

use std::{net::IpAddr, time::Duration};

use models::{AuthUser, LoginAnswer, LoginRequest, ServerVersion, UserInfo};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{
    error::AuthError,
    gate::{LoginGate, attempt_keys},
    passwords::{hash_password, random_password},
    roles::{AdminSession, Role, permissions},
    tokens::{new_token, principal_text, token_hash},
};
use crate::{
    ledger::Event,
    store::{AdminUserRow, Store, TokenRow},
    sys::VERSION,
};

/// The realm of the administrators this server keeps itself.
pub const LOCAL_REALM: &str = "local";
/// The administrator the first start creates, with the password in the data directory's
/// `initial-admin-password`.
pub const FIRST_ADMIN: &str = "admin";
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How stale a token's stored last use may get before a request writes it back.
const TOUCH_EVERY: time::Duration = time::Duration::seconds(30);

#[derive(Debug)]
pub struct Auth {
    pub(super) store: Store,
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
            principal: FIRST_ADMIN.into(),
            password_hash: hash,
            role: Role::Admin.as_str().into(),
            scope: None,
        };
        let event = Event::AdminUserChanged {
            principal: FIRST_ADMIN.into(),
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

    /// Logs in. An administrator is not a licensed user: the license's user limit does not apply.
    pub async fn login(
        &self,
        request: LoginRequest,
        peer: IpAddr,
    ) -> Result<LoginAnswer, AuthError> {
        let realm = request
            .realm
            .clone()
            .unwrap_or_else(|| LOCAL_REALM.to_owned());
        let principal = principal_text(&request.principal);
        let keys = attempt_keys(&format!("{realm}:{principal}"), peer);
        let user = if realm == LOCAL_REALM {
            self.store.admin_user(&principal).await?
        } else {
            None
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.gate.check(&keys, hash, &request.secret).await?;
        let Some(user) = user.filter(|_| ok) else {
            return Err(AuthError::LoginDenied);
        };
        let role = Role::parse(&user.role).unwrap_or(Role::Viewer);

        let token = new_token()?;
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
                server_version: VERSION.to_owned(),
            },
        })
    }

    /// The administrator a token belongs to, refreshing its idle time.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<AdminSession, AuthError> {
        let token = token
            .map(str::trim)
            .filter(|t| uuid::Uuid::parse_str(t).is_ok())
            .ok_or(AuthError::Unauthenticated)?;
        let hash = token_hash(token);
        let row = self
            .store
            .token(&hash)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if !bool::from(row.token_hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(AuthError::Unauthenticated);
        }
        let now = OffsetDateTime::now_utc();
        let idle = time::Duration::try_from(self.idle).unwrap_or(time::Duration::MAX);
        let lifetime = time::Duration::try_from(ABSOLUTE_LIFETIME).unwrap_or(time::Duration::MAX);
        if now - row.last_used > idle || now - row.created > lifetime {
            self.store.delete_token(&hash).await?;
            return Err(AuthError::SessionExpired);
        }
        // The user may have been removed or changed since the login.
        let user = match row.realm.as_str() {
            LOCAL_REALM => self.store.admin_user(&row.principal).await?,
            _ => None,
        }
        .ok_or(AuthError::Unauthenticated)?;
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

    pub async fn logout(&self, token: Option<&str>) -> Result<(), AuthError> {
        self.authenticate(token).await?;
        let token = token.map(str::trim).unwrap_or_default();
        self.store.delete_token(&token_hash(token)).await?;
        Ok(())
    }
}
