//! Who is logged in to the admin screens, kept in the tab's `sessionStorage`: a reload keeps the
//! login, closing the tab (or the browser) ends it, and no other site or tab can read it.
//!
//! The server is the judge of a token. When it says the session ended (expired, logged out
//! elsewhere, user removed), [`Auth::fail`] forgets the login and leaves a notice; the admin
//! shell, which watches the login, then shows the login form and comes back afterwards.

use leptos::prelude::*;
use models::{ErrorCode, LoginAnswer};
use serde::{Deserialize, Serialize};

use crate::api::{self, Tokens};

const LOGIN_KEY: &str = "license-server.login";
const VENDOR_KEY: &str = "license-server.vendor";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub token: String,
    pub principal: String,
    /// Holds `EDIT_LICENSE`: sees the buttons that change things. The server checks again.
    pub can_edit: bool,
    /// What the top bar calls this login: `administrator`, `viewer`, or for a user limited to
    /// another scope than this server's, that scope. (A login stored by an older version has
    /// none, and is shown by `can_edit`.)
    #[serde(default)]
    pub role: String,
}

impl Login {
    pub fn from_answer(principal: &str, answer: &LoginAnswer) -> Self {
        // Our server's scope is `license`; `server.*` grants every scope.
        let can_edit = answer
            .permissions
            .iter()
            .any(|p| p == "license.EDIT_LICENSE" || p == "server.EDIT_LICENSE");
        let can_view = answer
            .permissions
            .iter()
            .any(|p| p == "license.VIEW_LICENSE" || p == "server.VIEW_LICENSE");
        let role = if can_edit {
            "administrator".to_owned()
        } else if can_view {
            "viewer".to_owned()
        } else {
            let mut scopes: Vec<&str> = answer
                .permissions
                .iter()
                .filter_map(|p| p.split_once('.').map(|(scope, _)| scope))
                .collect();
            scopes.dedup();
            format!("limited to scope {}", scopes.join(", "))
        };
        Self {
            token: answer.token.clone(),
            principal: principal.to_owned(),
            can_edit,
            role,
        }
    }
}

/// The login state, shared through context by every admin screen.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    pub login: RwSignal<Option<Login>>,
    /// The vendor's licensing token while logged in to the vendor service.
    pub vendor: RwSignal<Option<String>>,
    /// Why the login form is shown again (e.g. the session expired).
    pub notice: RwSignal<Option<String>>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

fn load<T: for<'de> Deserialize<'de>>(key: &str) -> Option<T> {
    let text = storage()?.get_item(key).ok()??;
    serde_json::from_str(&text).ok()
}

fn store<T: Serialize>(key: &str, value: Option<&T>) {
    let Some(storage) = storage() else { return };
    let _ = match value.and_then(|v| serde_json::to_string(v).ok()) {
        Some(text) => storage.set_item(key, &text),
        None => storage.remove_item(key),
    };
}

impl Auth {
    /// Reads the tab's login and keeps `sessionStorage` in step with the signals.
    pub fn provide() -> Self {
        let auth = Self {
            login: RwSignal::new(load(LOGIN_KEY)),
            vendor: RwSignal::new(load(VENDOR_KEY)),
            notice: RwSignal::new(None),
        };
        Effect::new(move || auth.login.with(|l| store(LOGIN_KEY, l.as_ref())));
        Effect::new(move || auth.vendor.with(|v| store(VENDOR_KEY, v.as_ref())));
        provide_context(auth);
        auth
    }

    pub fn get() -> Self {
        expect_context::<Self>()
    }

    pub fn can_edit(&self) -> bool {
        self.login.with(|l| l.as_ref().is_some_and(|l| l.can_edit))
    }

    /// The current tokens, read untracked: a call is an event, not a view.
    pub fn tokens(&self) -> OwnedTokens {
        OwnedTokens {
            admin: self
                .login
                .with_untracked(|l| l.as_ref().map(|l| l.token.clone())),
            vendor: self.vendor.get_untracked(),
        }
    }

    /// The message to show next to a form for `error`; when the admin session ended, also
    /// forgets the login, which sends the user to the login form.
    pub fn fail(&self, error: &api::Error) -> String {
        if error.session_ended() {
            self.notice.set(Some(
                "Your session has ended (it expired or was logged out). Log in again to continue."
                    .to_owned(),
            ));
            self.vendor.set(None);
            self.login.set(None);
        }
        if error.code() == Some(ErrorCode::LicensingSessionNotFound) {
            self.vendor.set(None);
        }
        error.message()
    }

    pub async fn logout(self) {
        let tokens = OwnedTokens {
            vendor: None,
            ..self.tokens()
        };
        // Whatever the server says, this tab forgets the token.
        let _ = api::logout(tokens.as_ref()).await;
        self.vendor.set(None);
        self.notice.set(Some("You are logged out.".to_owned()));
        self.login.set(None);
    }
}

/// Tokens that an `async` block can own across its awaits.
#[derive(Debug, Clone, Default)]
pub struct OwnedTokens {
    pub admin: Option<String>,
    pub vendor: Option<String>,
}

impl OwnedTokens {
    pub fn as_ref(&self) -> Tokens<'_> {
        Tokens {
            admin: self.admin.as_deref(),
            vendor: self.vendor.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(permissions: &[&str]) -> String {
        let answer: LoginAnswer = serde_json::from_value(serde_json::json!({
            "token": "t", "timeout": 1, "properties": {},
            "user": {"id": "u", "realm": "local", "info": {}},
            "permissions": permissions,
            "status": {"server-version": "0"},
        }))
        .unwrap();
        Login::from_answer("u", &answer).role
    }

    #[test]
    fn the_role_says_what_the_login_may_do_here() {
        assert_eq!(
            role(&["server.VIEW_LICENSE", "server.EDIT_LICENSE"]),
            "administrator"
        );
        assert_eq!(role(&["license.VIEW_LICENSE"]), "viewer");
        assert_eq!(
            role(&["billing.VIEW_LICENSE", "billing.EDIT_LICENSE"]),
            "limited to scope billing"
        );
    }
}
