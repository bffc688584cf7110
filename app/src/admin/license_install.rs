//! Installing a license file (chosen or pasted: anything that is not a license is named as such
//! before it is sent, and a binary file never lands in the text box), and the offline activation
//! request for a server that cannot reach its vendor.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::task::{Task, TaskButton, on_submit};
use crate::{api, auth::Auth, download::save_as, feedback::done_message};

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
pub fn InstallForm(on_installed: impl Fn(String) + Copy + 'static) -> impl IntoView {
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
                    rows="4"
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
pub fn OfflineActivation() -> impl IntoView {
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
