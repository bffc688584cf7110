//! Vendor activation: log in to the vendor's licensing service (through this server, which holds
//! the service's address), list what the account may activate, activate one with a click.

use leptos::prelude::*;
use models::RemoteLicense;

use super::{
    login_form::{LoginForm, LoginWords},
    shell::Shell,
    task::{Loaded, Task, TaskButton, loaded},
};
use crate::{api, auth::Auth, format, paths::LICENSES_PATH, table::actions_header};

#[component]
pub fn VendorScreen() -> impl IntoView {
    let auth = Auth::get();
    view! {
        <Shell title="Vendor activation">
            <Show when=move || auth.vendor.with(Option::is_some) fallback=VendorLogin>
                <VendorLicenses />
            </Show>
        </Shell>
    }
}

#[component]
fn VendorLogin() -> impl IntoView {
    let auth = Auth::get();
    let principal = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let task = Task::new();
    let submit = move || {
        let (who, password) = (principal.get_untracked(), secret.get_untracked());
        let tokens = auth.tokens();
        task.run(
            async move { api::vendor_login(tokens.as_ref(), &who, &password).await },
            move |answer| {
                secret.set(String::new());
                auth.vendor.set(Some(answer.token));
            },
        );
    };
    let words = LoginWords {
        id: "vendor",
        principal: "Account",
        secret: "Secret",
        submit: "Log in to the vendor",
        own: false,
    };
    view! {
        <LoginForm words form_id="vendor-login" principal secret task submit>
            <h3 id="vendor-title">"Log in to the vendor"</h3>
            <p class="hint">
                "Your account at the vendor's licensing service. This server passes the login on and never stores the secret."
            </p>
        </LoginForm>
    }
}

/// The account's licenses, and the keys installed here (to tell "activated here" apart).
async fn load(auth: Auth) -> Result<(Vec<RemoteLicense>, Vec<String>), String> {
    let tokens = auth.tokens();
    let remote = api::vendor_licenses(tokens.as_ref())
        .await
        .map_err(|e| auth.fail(&e))?;
    let installed = api::licenses(tokens.as_ref())
        .await
        .map_err(|e| auth.fail(&e))?;
    Ok((
        remote.licenses,
        installed.into_iter().map(|l| l.key).collect(),
    ))
}

#[component]
fn VendorLicenses() -> impl IntoView {
    let auth = Auth::get();
    let licenses = Loaded::new(load);
    let task = Task::new();
    let activated = RwSignal::new(None::<String>);
    let activate = move |key: String| {
        activated.set(None);
        let tokens = auth.tokens();
        task.run(
            async move { api::vendor_activate(tokens.as_ref(), &key).await },
            move |answer| {
                activated.set(Some(answer.license.key));
                licenses.reload();
            },
        );
    };
    let logout = Task::new();
    let log_out = move || {
        let tokens = auth.tokens();
        logout.run(
            async move { api::vendor_logout(tokens.as_ref()).await },
            move |_| auth.vendor.set(None),
        );
    };
    view! {
        <section class="panel" aria-labelledby="vendor-licenses-title">
            <div class="panel-head">
                <h3 id="vendor-licenses-title">"Licenses of the vendor account"</h3>
                <TaskButton task=logout id="vendor-logout" on_click=log_out>
                    "Log out of the vendor"
                </TaskButton>
            </div>
            {logout.error_view()}
            {task.error_view()}
            {move || {
                activated
                    .get()
                    .map(|key| {
                        view! {
                            <p class="form-ok" role="status">
                                {format!("Activated and installed {key}. ")}
                                <a href=LICENSES_PATH>"See it under Licenses."</a>
                            </p>
                        }
                    })
            }}
            {loaded(
                licenses,
                move |(remote, installed): (Vec<RemoteLicense>, Vec<String>)| {
                    view! {
                        <div class="table-wrap">
                            <table aria-labelledby="vendor-licenses-title">
                                <thead>
                                    <tr>
                                        <th scope="col">"Key"</th>
                                        <th scope="col">"Products"</th>
                                        <th scope="col">"Expires"</th>
                                        <th scope="col">"State"</th>
                                        {actions_header()}
                                    </tr>
                                </thead>
                                <tbody>
                                    {remote.is_empty().then(|| view! {
                                        <tr class="placeholder">
                                            <td colspan="5">"This account has no licenses to activate."</td>
                                        </tr>
                                    })}
                                    {remote
                                        .into_iter()
                                        .map(|license| {
                                            let here = installed.contains(&license.key);
                                            remote_row(license, here, auth, task, activate)
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }
                        .into_any()
                },
            )}
        </section>
    }
}

fn remote_row(
    license: RemoteLicense,
    installed_here: bool,
    auth: Auth,
    task: Task,
    activate: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let used = license.activations.len();
    let state = if installed_here {
        "installed here".to_owned()
    } else if used as u32 >= license.max_activations {
        format!(
            "no activations left ({used} of {})",
            license.max_activations
        )
    } else {
        format!(
            "available ({used} of {} activations used)",
            license.max_activations
        )
    };
    let products = license
        .rules
        .products
        .iter()
        .map(format::product_rule)
        .collect::<Vec<_>>()
        .join("\n");
    let key = license.key.clone();
    let row_key = license.key.clone();
    let label = format!("Activate {}", license.key);
    let can_activate = !installed_here && (used as u32) < license.max_activations;
    view! {
        <tr data-key=row_key>
            <td class="mono">{license.key}</td>
            <td class="lines">{products}</td>
            <td>{license.rules.expires.unwrap_or_else(|| "never".to_owned())}</td>
            <td class="state">{state}</td>
            <td>
                <Show when=move || auth.can_edit() && can_activate>
                    <TaskButton
                        task
                        class="primary"
                        label=label.clone()
                        on_click={
                            let key = key.clone();
                            move || activate(key.clone())
                        }
                    >
                        "Activate"
                    </TaskButton>
                </Show>
            </td>
        </tr>
    }
}
