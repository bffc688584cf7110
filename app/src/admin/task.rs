//! Requests from the admin screens: one started by a form ([`Task`]), and what a screen loads
//! ([`Loaded`]).

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

use crate::{api, auth::Auth, feedback::error_message};

/// One request started by a form: its button is disabled while it runs, and its error (in the
/// server's words) is shown next to the form.
#[derive(Debug, Clone, Copy)]
pub struct Task {
    pub busy: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
}

impl Task {
    pub fn new() -> Self {
        Self {
            busy: RwSignal::new(false),
            error: RwSignal::new(None),
        }
    }

    /// Runs `work`; `done` gets its answer. A second click while it runs does nothing.
    pub fn run<T: 'static>(
        self,
        work: impl Future<Output = Result<T, api::Error>> + 'static,
        done: impl FnOnce(T) + 'static,
    ) {
        if self.busy.get_untracked() {
            return;
        }
        let auth = Auth::get();
        self.busy.set(true);
        self.error.set(None);
        spawn_local(async move {
            let result = work.await;
            // The screen may be gone (e.g. the session ended and the login form replaced it).
            if self.busy.try_set(false).is_some() {
                return;
            }
            match result {
                Ok(answer) => done(answer),
                Err(e) => {
                    let message = auth.fail(&e);
                    let _ = self.error.try_set(Some(message));
                }
            }
        });
    }

    /// The error paragraph, for under the form.
    pub fn error_view(self) -> impl IntoView {
        move || self.error.get().map(error_message)
    }
}

impl Default for Task {
    fn default() -> Self {
        Self::new()
    }
}

/// What a screen shows from the server: loaded when the screen appears, and again after every
/// [`Loaded::reload`] (a change was made: the screen must show what the server has now).
pub struct Loaded<T: 'static> {
    resource: LocalResource<Result<T, String>>,
    generation: RwSignal<u32>,
}

impl<T: 'static> Clone for Loaded<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for Loaded<T> {}

impl<T: 'static> std::fmt::Debug for Loaded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> Loaded<T> {
    /// `load` gets the logged-in administrator's [`Auth`]; its error is the message to show.
    pub fn new<F>(load: fn(Auth) -> F) -> Self
    where
        F: Future<Output = Result<T, String>> + 'static,
    {
        let auth = Auth::get();
        let generation = RwSignal::new(0_u32);
        let resource = LocalResource::new(move || {
            generation.track();
            load(auth)
        });
        Self {
            resource,
            generation,
        }
    }

    pub fn reload(self) {
        self.generation.update(|n| *n += 1);
    }
}

/// What a screen loaded: "Loading…" until the answer comes, then the error or `ok`'s view.
pub fn loaded<T, V>(loaded: Loaded<T>, ok: impl Fn(T) -> V + Send + Sync + 'static) -> impl IntoView
where
    T: Clone + 'static,
    V: IntoView + 'static,
{
    let resource = loaded.resource;
    move || match resource.get() {
        None => view! { <p class="placeholder">"Loading…"</p> }.into_any(),
        Some(Err(message)) => error_message(message).into_any(),
        Some(Ok(value)) => ok(value).into_any(),
    }
}

/// A submit handler that keeps the browser from reloading the page.
pub fn on_submit(handler: impl Fn() + 'static) -> impl Fn(SubmitEvent) + 'static {
    move |ev: SubmitEvent| {
        ev.prevent_default();
        handler();
    }
}

/// A button that starts a request of `task`: disabled while the request runs, so a second click
/// does nothing.
#[component]
pub fn TaskButton(
    task: Task,
    #[prop(optional)] id: Option<&'static str>,
    #[prop(optional)] class: Option<&'static str>,
    /// What a screen reader says, when the text alone does not tell which row it is for.
    #[prop(optional, into)]
    label: Option<String>,
    on_click: impl Fn() + 'static,
    children: Children,
) -> impl IntoView {
    view! {
        <button
            type="button"
            id=id
            class=class
            aria-label=label
            disabled=move || task.busy.get()
            on:click=move |_| on_click()
        >
            {children()}
        </button>
    }
}
