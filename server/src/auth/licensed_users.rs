//! Licensed users: the `user` a session names on the license port, counted against the active
//! license's user limit until an administrator clears them.
//!
//! Administrators of the admin API are not licensed users of the product: they are never counted,
//! so clients that fill the limit (with made-up users, even) cannot lock an administrator out, and
//! the administrator can always log in and clear them.

use time::OffsetDateTime;

use super::{error::AuthError, logins::Auth};
use crate::{
    ledger::Event,
    store::{Admission, LicensedUserRow},
};

impl Auth {
    /// Counts `(realm, principal)` as a licensed user, or refuses it when the license's limit
    /// (`limit`) is reached. A user counted already always passes.
    pub async fn admit(
        &self,
        realm: &str,
        principal: &str,
        limit: Option<u32>,
    ) -> Result<(), AuthError> {
        match self
            .store
            .admit_licensed_user(realm, principal, OffsetDateTime::now_utc(), limit)
            .await?
        {
            Admission::Known | Admission::Added => Ok(()),
            Admission::Refused { limit } => Err(AuthError::UserLimit { limit }),
        }
    }

    /// Every licensed user, most recent access first.
    pub async fn licensed_users(&self) -> Result<Vec<LicensedUserRow>, AuthError> {
        Ok(self.store.licensed_users().await?)
    }

    /// Clears licensed users: all (`who` = None) or one `(realm, principal)`, recorded in the
    /// ledger as done `by` an administrator. Returns how many were removed and how many remain.
    pub async fn clear_licensed_users(
        &self,
        who: Option<(&str, &str)>,
        by: &str,
    ) -> Result<(u64, u64), AuthError> {
        // The ledger row is written with the deletion, in one transaction; its count is what the
        // request asked for (all, or one), the store reports what it found.
        let event = Event::LicensedUsersCleared {
            realm: who.map(|(realm, _)| realm.to_owned()),
            principal: who.map(|(_, principal)| principal.to_owned()),
            removed: u64::from(who.is_some()),
            by: by.to_owned(),
        };
        let row = event.row(OffsetDateTime::now_utc());
        Ok(self.store.clear_licensed_users(who, row).await?)
    }
}
