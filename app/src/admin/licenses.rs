//! Licenses: the active one and every installed one, installing a license file, and the offline
//! activation request.

use leptos::prelude::*;
use models::{ErrorCode, License};
use wasm_bindgen::JsCast;

use super::{
    shell::Shell,
    task::{Loaded, Task, TaskButton, loaded, on_submit},
};
use crate::{
    api,
    auth::Auth,
    clock,
    download::save_as,
    feedback::{confirm, done_message},
    format::{self, Expiry},
};

/// What the screen shows: every installed license, and which key is active.
#[derive(Debug, Clone, Default)]
struct Installed {
    licenses: Vec<License>,
    active: Option<String>,
}

async fn load(auth: Auth) -> Result<Installed, String> {
    let tokens = auth.tokens();
    let licenses = api::licenses(tokens.as_ref())
        .await
        .map_err(|e| auth.fail(&e))?;
    let active = match api::active_license(tokens.as_ref()).await {
        Ok(answer) => Some(answer.license.key),
        Err(e) if e.code() == Some(ErrorCode::LicenseKeyNotFound) => None,
        Err(e) => return Err(auth.fail(&e)),
    };
    Ok(Installed { licenses, active })
}

#[component]
pub fn LicensesScreen() -> impl IntoView {
    view! {
        <Shell title="Licenses">
            <LicensesBody />
        </Shell>
    }
}

#[component]
fn LicensesBody() -> impl IntoView {
    let auth = Auth::get();
    let installed = Loaded::new(load);
    let just_installed = RwSignal::new(None::<String>);
    let removed = RwSignal::new(None::<String>);
    let on_installed = move |key: String| {
        removed.set(None);
        just_installed.set(Some(key));
        installed.reload();
    };
    let removing = Task::new();
    // A failed removal (e.g. another administrator was first) also reloads: the list must show
    // what the server has now.
    Effect::new(move || {
        if removing.error.with(Option::is_some) {
            installed.reload();
        }
    });
    let remove = move |key: String| {
        if !confirm(&format!(
            "Remove license {key}? Its cartridges stop granting at once; jobs that hold a license from it keep it until they release it."
        )) {
            return;
        }
        removed.set(None);
        let tokens = auth.tokens();
        let message = format!(
            "Removed license {key}. Jobs that hold a license from it keep it until they finish."
        );
        removing.run(
            async move { api::remove_license(tokens.as_ref(), &key).await },
            move |_| {
                just_installed.set(None);
                removed.set(Some(message));
                installed.reload();
            },
        );
    };
    view! {
        <section class="panel" id="licenses" aria-labelledby="licenses-title">
            <h3 id="licenses-title">"Installed licenses"</h3>
            {removing.error_view()}
            {move || removed.get().map(done_message)}
            {loaded(
                installed,
                move |installed: Installed| {
                    if installed.licenses.is_empty() {
                        return view! {
                            <p class="placeholder">
                                "No license is installed. Install a license file below, or activate one from the vendor."
                            </p>
                        }
                            .into_any();
                    }
                    let active = installed.active.clone();
                    installed
                        .licenses
                        .into_iter()
                        .map(|license| {
                            let is_active = active.as_deref() == Some(license.key.as_str());
                            let is_new = just_installed
                                .with_untracked(|k| k.as_deref() == Some(license.key.as_str()));
                            license_card(license, is_active, is_new, auth, removing, remove)
                        })
                        .collect_view()
                        .into_any()
                },
            )}
        </section>
        <Show when=move || auth.can_edit()>
            <InstallForm on_installed=on_installed />
            <OfflineActivation />
        </Show>
    }
}

fn license_card(
    license: License,
    active: bool,
    new: bool,
    auth: Auth,
    task: Task,
    remove: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let key = license.key.clone();
    let label = format!("Remove license {}", license.key);
    let rules = &license.rules;
    let (expires, expiry_class) = match (rules.expires, format::expiry(rules.expires, clock::now()))
    {
        (_, Expiry::Never) | (None, _) => ("never".to_owned(), ""),
        (Some(at), Expiry::Later) => (clock::local(at), ""),
        (Some(at), Expiry::Soon(days)) => {
            (format!("{} — in {days} days", clock::local(at)), "warn")
        }
        (Some(at), Expiry::Expired) => (format!("{} — expired", clock::local(at)), "bad"),
    };
    let max_users = rules
        .max_users
        .map_or_else(|| "no limit".to_owned(), |n| n.to_string());
    let products: Vec<String> = rules.products.iter().map(format::product_rule).collect();
    let rules_json = serde_json::to_string_pretty(&license.rules).unwrap_or_default();
    view! {
        <article class="license" class:new=new data-key=license.key.clone()>
            <header>
                <h4>{license.key.clone()}</h4>
                {active.then(|| view! { <span class="badge ok">"active"</span> })}
                {new.then(|| view! { <span class="badge">"just installed"</span> })}
                <Show when=move || auth.can_edit()>
                    <TaskButton
                        task
                        class="danger"
                        label=label.clone()
                        on_click={
                            let key = key.clone();
                            move || remove(key.clone())
                        }
                    >
                        "Remove"
                    </TaskButton>
                </Show>
            </header>
            <dl class="facts">
                <dt>"Server ID"</dt>
                <dd class="mono">{license.server_id.clone()}</dd>
                <dt>"Serial"</dt>
                <dd>{rules.serial_number}</dd>
                <dt>"Products"</dt>
                <dd>
                    <ul class="products">
                        {products.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
                    </ul>
                </dd>
                <dt>"Max users"</dt>
                <dd>{max_users}</dd>
                <dt>"Issued"</dt>
                <dd>{clock::local(rules.issued)}</dd>
                <dt>"Expires"</dt>
                <dd class=expiry_class>{expires}</dd>
            </dl>
            <details>
                <summary>"Rules"</summary>
                <table>
                    <thead>
                        <tr>
                            <th scope="col" class="num">"Product ID"</th>
                            <th scope="col">"Product"</th>
                            <th scope="col" class="num">"Major"</th>
                            <th scope="col" class="num">"Runcount"</th>
                            <th scope="col" class="num">"Credits"</th>
                            <th scope="col">"Postpay"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rules
                            .products
                            .iter()
                            .map(|p| {
                                view! {
                                    <tr>
                                        <td class="num">{p.product_id}</td>
                                        <td>{p.product.clone()}</td>
                                        <td class="num">
                                            {if p.major_version == 0 {
                                                "any".to_owned()
                                            } else {
                                                p.major_version.to_string()
                                            }}
                                        </td>
                                        <td class="num">
                                            {format::group_digits(i64::from(p.runcount))}
                                        </td>
                                        <td class="num">
                                            {format::group_digits(
                                                i64::try_from(p.credits).unwrap_or(i64::MAX),
                                            )}
                                        </td>
                                        <td>{if p.postpay { "yes" } else { "no" }}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
                <pre class="rules">{rules_json}</pre>
            </details>
        </article>
    }
}

/// What a file that is not a license gets, before anything is sent.
const NOT_A_LICENSE: &str = "is not a license file (expected a JSON document starting with {)";

/// Reads the chosen file's text into `text`, if it is the text of a license file at all: a
/// binary file (a picture chosen by mistake) never lands in the text box.
fn read_file(
    ev: &leptos::ev::Event,
    text: RwSignal<String>,
    installed: RwSignal<Option<String>>,
    task: Task,
) {
    let Some(file) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        .and_then(|input| input.files())
        .and_then(|files| files.get(0))
    else {
        return;
    };
    // A message about an earlier file must not stand next to this one's.
    installed.set(None);
    task.error.set(None);
    leptos::task::spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(file.text()).await {
            Ok(content) => {
                let content = content.as_string().unwrap_or_default();
                if looks_like_a_license(&content) {
                    text.set(content);
                } else {
                    task.error
                        .set(Some(format!("{} {NOT_A_LICENSE}.", file.name())));
                }
            }
            Err(_) => task
                .error
                .set(Some(format!("Cannot read the file {}.", file.name()))),
        }
    });
}

/// Text (no NUL, nothing the decoder had to replace) that starts as a JSON object does.
fn looks_like_a_license(content: &str) -> bool {
    !content.contains(['\0', '\u{fffd}'])
        && content
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('{')
}

#[component]
fn InstallForm(on_installed: impl Fn(String) + Copy + 'static) -> impl IntoView {
    let auth = Auth::get();
    let text = RwSignal::new(String::new());
    let task = Task::new();
    let installed = RwSignal::new(None::<String>);
    let submit = on_submit(move || {
        let file = text.get_untracked();
        installed.set(None);
        if file.trim().is_empty() {
            task.error.set(Some(
                "Choose a license file or paste its text first.".to_owned(),
            ));
            return;
        }
        if !looks_like_a_license(&file) {
            task.error
                .set(Some(format!("The text you pasted {NOT_A_LICENSE}.")));
            return;
        }
        let tokens = auth.tokens();
        task.run(
            async move { api::install_license(tokens.as_ref(), file).await },
            move |answer| {
                let key = answer.license.key;
                text.set(String::new());
                if answer.already_installed {
                    installed.set(Some(format!(
                        "License {key} is already installed; nothing changed."
                    )));
                } else {
                    installed.set(Some(format!(
                        "Installed license {key}. It counts from now on."
                    )));
                    on_installed(key);
                }
            },
        );
    });
    view! {
        <section class="panel" aria-labelledby="install-title">
            <h3 id="install-title">"Install a license"</h3>
            <form class="form" id="install-form" on:submit=submit>
                <p class="hint">
                    "A license file from your vendor (.lic). Its signature and server ID are checked before anything is installed."
                </p>
                <label for="license-file">"License file"</label>
                <input
                    id="license-file"
                    type="file"
                    accept=".lic,.json,application/json,text/plain"
                    on:change=move |ev| read_file(&ev, text, installed, task)
                />
                <label for="license-text">"…or paste its text"</label>
                <textarea
                    id="license-text"
                    rows="8"
                    spellcheck="false"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                ></textarea>
                <button type="submit" class="primary" disabled=move || task.busy.get()>
                    {move || if task.busy.get() { "Installing…" } else { "Install" }}
                </button>
                {task.error_view()}
                {move || {
                    installed.get().map(done_message)
                }}
            </form>
        </section>
    }
}

#[component]
fn OfflineActivation() -> impl IntoView {
    let auth = Auth::get();
    let task = Task::new();
    let saved = RwSignal::new(None::<String>);
    let download = move || {
        let tokens = auth.tokens();
        task.run(
            async move { api::activation_request(tokens.as_ref()).await },
            move |(name, text)| {
                if save_as(&name, "application/json", &text) {
                    saved.set(Some(name));
                } else {
                    task.error.set(Some(
                        "The browser did not let the file be saved.".to_owned(),
                    ));
                }
            },
        );
    };
    view! {
        <section class="panel" aria-labelledby="offline-title">
            <h3 id="offline-title">"Offline activation"</h3>
            <p class="hint">
                "For a server that cannot reach the vendor: download this server's activation request (a small file signed with the server's own key), send it to your vendor, and install the license file that comes back with the form above."
            </p>
            <TaskButton task id="download-request" on_click=download>
                {move || {
                    if task.busy.get() { "Preparing…" } else { "Download activation request" }
                }}
            </TaskButton>
            {task.error_view()}
            {move || saved.get().map(|name| done_message(format!("Saved {name}.")))}
        </section>
    }
}
