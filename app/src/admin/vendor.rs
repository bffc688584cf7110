//! Vendor activation: log in to the vendor's licensing service (through this server, which holds
//! the service's address), list what the account may activate, activate one with a click.

use leptos::prelude::*;
use models::RemoteLicense;

use super::{
    login_form::{LoginForm, LoginWords},
    shell::Shell,
    task::{Loaded, Task, TaskButton, loaded},
};
use crate::{api, auth::Auth, feedback::confirm, format, paths::LICENSES_PATH};

#[component]
pub fn VendorScreen() -> impl IntoView {
    view! {
        <Shell title="Vendor activation">
            <VendorBody />
        </Shell>
    }
}

/// The vendor login and licenses, or, on a server started without `--vendor-url`, what to do
/// instead: said before anyone types an account and a secret.
#[component]
fn VendorBody() -> impl IntoView {
    let auth = Auth::get();
    let service = Loaded::new(|auth: Auth| async move {
        api::vendor_service(auth.tokens().as_ref())
            .await
            .map_err(|e| auth.fail(&e))
    });
    loaded(service, move |service: models::VendorService| {
        if !service.configured {
            return view! {
                <section class="panel" id="no-vendor" aria-labelledby="no-vendor-title">
                    <h3 id="no-vendor-title">"No vendor service is configured"</h3>
                    <p>
                        "This server was started without the address of a vendor licensing service, so licenses cannot be activated online from here. Start it with "
                        <code>"--vendor-url URL"</code> " (or " <code>"vendor-url"</code>
                        " in its configuration file) to activate online, or use the offline activation under "
                        <a href=LICENSES_PATH>"Licenses"</a> "."
                    </p>
                </section>
            }
                .into_any();
        }
        view! {
            <Show when=move || auth.vendor.with(Option::is_some) fallback=VendorLogin>
                <VendorLicenses />
            </Show>
        }
        .into_any()
    })
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

/// What the screen shows: the account's licenses, the keys installed here (to tell "activated
/// here" apart), and this server's id (to mark its own activations).
#[derive(Debug, Clone)]
struct Remote {
    licenses: Vec<RemoteLicense>,
    installed: Vec<String>,
    this_server: Option<String>,
}

async fn load(auth: Auth) -> Result<Remote, String> {
    let tokens = auth.tokens();
    let remote = api::vendor_licenses(tokens.as_ref())
        .await
        .map_err(|e| auth.fail(&e))?;
    let installed = api::licenses(tokens.as_ref())
        .await
        .map_err(|e| auth.fail(&e))?;
    let this_server = api::status_data(None)
        .await
        .ok()
        .and_then(|d| d.servers.into_iter().find(|s| s.coordinator.is_some()))
        .map(|s| s.server_id);
    Ok(Remote {
        licenses: remote.licenses,
        installed: installed.into_iter().map(|l| l.key).collect(),
        this_server,
    })
}

#[component]
fn VendorLicenses() -> impl IntoView {
    let auth = Auth::get();
    let licenses = Loaded::new(load);
    let task = Task::new();
    let activated = RwSignal::new(None::<String>);
    let deactivated = RwSignal::new(None::<String>);
    let deactivate = move |key: String, server_id: String| {
        if !confirm(&format!(
            "Deactivate {key} for server {server_id}? The vendor frees this activation so the license can be activated for another server. Only do this for a server that no longer uses it."
        )) {
            return;
        }
        activated.set(None);
        deactivated.set(None);
        let tokens = auth.tokens();
        task.run(
            async move { api::vendor_deactivate(tokens.as_ref(), &key, &server_id).await },
            move |answer| {
                let here = if answer.removed_here {
                    " It was this server's, so it is removed here too."
                } else {
                    ""
                };
                deactivated.set(Some(format!(
                    "Deactivated {} for server {}.{here} It can now be activated for another server.",
                    answer.key, answer.server_id
                )));
                licenses.reload();
            },
        );
    };
    let activate = move |key: String| {
        deactivated.set(None);
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
            {move || {
                deactivated
                    .get()
                    .map(|message| view! { <p class="form-ok" role="status">{message}</p> })
            }}
            {loaded(
                licenses,
                move |Remote { licenses: remote, installed, this_server }: Remote| {
                    view! {
                        <div class="table-wrap" tabindex="0">
                            <table aria-labelledby="vendor-licenses-title">
                                <thead>
                                    <tr>
                                        <th scope="col">"Key"</th>
                                        <th scope="col">"Products"</th>
                                        <th scope="col">"Expires"</th>
                                        <th scope="col">"Activated for"</th>
                                        <th scope="col">"State"</th>
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
                                            let actions = Actions { auth, task, activate, deactivate };
                                            remote_row(license, here, this_server.as_deref(), actions)
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

/// What a row's buttons do.
#[derive(Clone, Copy)]
struct Actions<A, D> {
    auth: Auth,
    task: Task,
    activate: A,
    deactivate: D,
}

fn remote_row<A, D>(
    license: RemoteLicense,
    installed_here: bool,
    this_server: Option<&str>,
    Actions {
        auth,
        task,
        activate,
        deactivate,
    }: Actions<A, D>,
) -> impl IntoView
where
    A: Fn(String) + Copy + Send + Sync + 'static,
    D: Fn(String, String) + Copy + Send + Sync + 'static,
{
    let activations = activations_list(&license, this_server, auth, task, deactivate);
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
    // The day is enough here (RFC 3339 starts with it); the exact moment is the tooltip.
    let expires = license
        .rules
        .expires
        .as_ref()
        .map_or_else(|| "never".to_owned(), |e| e.chars().take(10).collect());
    view! {
        <tr data-key=row_key>
            <td class="mono">{license.key}</td>
            <td class="lines">{products}</td>
            <td title=license.rules.expires.clone()>{expires}</td>
            <td>{activations}</td>
            // The state and what can be done about it share a cell: a column of buttons that
            // most rows leave empty would be pushed out of sight on a narrow screen.
            <td>
                <span class="state">{state}</span>
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

/// The servers a license is activated for, each with Deactivate (a transfer).
fn activations_list(
    license: &RemoteLicense,
    this_server: Option<&str>,
    auth: Auth,
    task: Task,
    deactivate: impl Fn(String, String) + Copy + Send + Sync + 'static,
) -> AnyView {
    if license.activations.is_empty() {
        return view! { <span class="placeholder">"none"</span> }.into_any();
    }
    let items = license
        .activations
        .iter()
        .map(|a| {
            let (key, server_id) = (license.key.clone(), a.server_id.clone());
            let mine = this_server == Some(a.server_id.as_str());
            let short: String = a.server_id.chars().take(12).collect();
            let label = format!("Deactivate {} for server {}", license.key, a.server_id);
            view! {
                <li>
                    <span class="mono" title=a.server_id.clone()>{format!("{short}…")}</span>
                    {mine.then_some(" (this server)")}
                    <Show when=move || auth.can_edit()>
                        <TaskButton
                            task
                            class="danger"
                            label=label.clone()
                            on_click={
                                let (key, server_id) = (key.clone(), server_id.clone());
                                move || deactivate(key.clone(), server_id.clone())
                            }
                        >
                            "Deactivate"
                        </TaskButton>
                    </Show>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="activations">{items}</ul> }.into_any()
}
