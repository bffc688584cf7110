//! The login form. After a login it goes back to `?next=` (where the user was when the session
//! ended), or to the licenses.

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    hooks::{use_navigate, use_query_map},
};

use super::{
    login_form::{LoginForm, LoginWords},
    task::Task,
};
use crate::{
    api,
    auth::{Auth, Login},
    paths::{LICENSES_PATH, LOGIN_PATH, STATUS_PATH},
};

/// Only addresses of this app: `?next=https://evil.example` must not turn the login into a
/// redirect to somewhere else.
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with("/admin/") || n.starts_with("/status/"))
        .filter(|n| !n.starts_with(LOGIN_PATH))
        .unwrap_or_else(|| LICENSES_PATH.to_owned())
}

#[component]
pub fn LoginScreen() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let next = move || safe_next(query.with(|q| q.get("next")));
    let navigate = use_navigate();
    let principal = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let task = Task::new();

    // Already logged in (another tab of this session, or a bookmark): straight on.
    Effect::new({
        let navigate = navigate.clone();
        move || {
            if auth.login.with(Option::is_some) {
                navigate(&next(), NavigateOptions::default());
            }
        }
    });

    let submit = move || {
        let (who, password) = (principal.get_untracked(), secret.get_untracked());
        task.run(
            async move {
                let answer = api::login(&who, &password).await?;
                Ok(Login::from_answer(&who, &answer))
            },
            move |login| {
                auth.notice.set(None);
                auth.login.set(Some(login));
                secret.set(String::new());
            },
        );
    };
    let words = LoginWords {
        id: "login",
        principal: "User name",
        secret: "Password",
        submit: "Log in",
        own: true,
    };

    view! {
        <header class="topbar">
            <h1>"License Server"</h1>
            <nav class="admin-nav">
                <a href=STATUS_PATH rel="external">
                        "Status page"
                    </a>
            </nav>
        </header>
        <main class="page login">
            <LoginForm words principal secret task submit>
                <h2 id="login-title">"Log in"</h2>
                <p class="hint" id="first-login">
                    "First time? The server created the administrator "
                    <code>"admin"</code>
                    " and wrote its password into the file "
                    <code>"initial-admin-password"</code>
                    " in its data directory (readable by the server's user only; "
                    <code>"license-server user passwd --principal admin"</code>
                    " changes it and deletes the file)."
                </p>
                {move || {
                    auth.notice
                        .get()
                        .map(|notice| {
                            view! {
                                <p class="notice" role="status">
                                    {notice}
                                </p>
                            }
                        })
                }}
            </LoginForm>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_inside_the_app() {
        assert_eq!(safe_next(Some("/admin/users".into())), "/admin/users");
        assert_eq!(
            safe_next(Some("/status/index.html?pool=farm".into())),
            "/status/index.html?pool=farm"
        );
        assert_eq!(
            safe_next(Some("https://evil.example/".into())),
            LICENSES_PATH
        );
        assert_eq!(safe_next(Some("//evil.example/".into())), LICENSES_PATH);
        assert_eq!(safe_next(Some("/admin/login?next=x".into())), LICENSES_PATH);
        assert_eq!(safe_next(None), LICENSES_PATH);
    }
}
