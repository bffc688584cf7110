//! Licensed users: everyone who authenticated, counted against the license's user limit; clear one
//! or all to free places.

use leptos::prelude::*;
use models::{ErrorCode, LicensedUser};

use super::{
    shell::Shell,
    task::{Loaded, Task, TaskButton, loaded},
};
use crate::{
    api,
    auth::Auth,
    clock,
    feedback::{confirm, done_message},
    format,
    table::actions_header,
};

#[derive(Debug, Clone)]
struct Users {
    users: Vec<LicensedUser>,
    /// The active license's limit; `None` = no limit.
    limit: Option<u32>,
}

async fn load(auth: Auth) -> Result<Option<Users>, String> {
    let tokens = auth.tokens();
    let active = match api::active_license(tokens.as_ref()).await {
        Ok(answer) => answer.license,
        // Users are counted against the active license: none, nothing to show.
        Err(e) if e.code() == Some(ErrorCode::LicenseKeyNotFound) => return Ok(None),
        Err(e) => return Err(auth.fail(&e)),
    };
    let answer = api::licensed_users(tokens.as_ref())
        .await
        .map_err(|e| auth.fail(&e))?;
    Ok(Some(Users {
        users: answer.license.authenticated_users.unwrap_or_default(),
        limit: active.rules.max_users,
    }))
}

#[component]
pub fn UsersScreen() -> impl IntoView {
    view! {
        <Shell title="Licensed users">
            <UsersBody />
        </Shell>
    }
}

#[component]
fn UsersBody() -> impl IntoView {
    let auth = Auth::get();
    let users = Loaded::new(load);
    let task = Task::new();
    let done = RwSignal::new(None::<String>);
    let after = move |message: String| {
        move |_| {
            done.set(Some(message));
            users.reload();
        }
    };
    // A failed clear (e.g. another tab cleared the user first) also reloads: the table must show
    // what the server has now.
    Effect::new(move || {
        if task.error.with(Option::is_some) {
            users.reload();
        }
    });
    let clear_one = move |realm: String, principal: String| {
        if !confirm(&format!(
            "Clear the licensed user {principal} ({realm})? Their place is free for someone else."
        )) {
            return;
        }
        done.set(None);
        let tokens = auth.tokens();
        let message = format!("Cleared {principal}.");
        task.run(
            async move { api::clear_licensed_user(tokens.as_ref(), &realm, &principal).await },
            after(message),
        );
    };
    let clear_all = move || {
        if !confirm("Clear every licensed user? Each place is free again.") {
            return;
        }
        done.set(None);
        let tokens = auth.tokens();
        task.run(
            async move { api::clear_licensed_users(tokens.as_ref()).await },
            after("Cleared every licensed user.".to_owned()),
        );
    };
    view! {
        <section class="panel" aria-labelledby="users-title">
            <h3 id="users-title">"Users counted against the license"</h3>
            {task.error_view()}
            {move || done.get().map(done_message)}
            {loaded(
                users,
                move |users: Option<Users>| {
                    let Some(Users { users, limit }) = users else {
                        return view! {
                            <p class="placeholder">
                                "No license is active, so no users are counted."
                            </p>
                        }
                            .into_any();
                    };
                    let count = users.len();
                    let any = count > 0;
                    let counted = counted(count, limit);
                    view! {
                        <p class="count" id="users-count">
                            {counted}
                        </p>
                        <div class="table-wrap" tabindex="0">
                            <table aria-labelledby="users-title">
                                <thead>
                                    <tr>
                                        <th scope="col">"Principal"</th>
                                        <th scope="col">"Realm"</th>
                                        <th scope="col">"Last access"</th>
                                        <Show when=move || auth.can_edit()>
                                            {actions_header()}
                                        </Show>
                                    </tr>
                                </thead>
                                <tbody>
                                    {(users.is_empty())
                                        .then(|| {
                                            view! {
                                                <tr class="placeholder">
                                                    <td colspan="4">"No licensed users."</td>
                                                </tr>
                                            }
                                        })}
                                    {users
                                        .into_iter()
                                        .map(|user| user_row(user, auth, task, clear_one))
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <Show when=move || auth.can_edit() && any>
                            <TaskButton task class="danger" id="clear-all" on_click=clear_all>
                                "Clear all users"
                            </TaskButton>
                        </Show>
                    }
                        .into_any()
                },
            )}
        </section>
    }
}

fn user_row(
    user: LicensedUser,
    auth: Auth,
    task: Task,
    clear: impl Fn(String, String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let (realm, principal) = (user.realm.clone(), user.principal.clone());
    let label = format!("Clear {}", user.principal);
    // The server's RFC 3339, shown in the browser's zone; as sent when it does not parse.
    let last_access = time::OffsetDateTime::parse(
        &user.last_access_date,
        &time::format_description::well_known::Rfc3339,
    )
    .map_or_else(|_| user.last_access_date.clone(), clock::local);
    view! {
        <tr>
            <td>{user.principal}</td>
            <td>{user.realm}</td>
            <td>{last_access}</td>
            <Show when=move || auth.can_edit()>
                <td>
                    <TaskButton
                        task
                        class="danger"
                        label=label.clone()
                        on_click={
                            let (realm, principal) = (realm.clone(), principal.clone());
                            move || clear(realm.clone(), principal.clone())
                        }
                    >
                        "Clear"
                    </TaskButton>
                </td>
            </Show>
        </tr>
    }
}

/// How many users count, against the license's limit if it sets one.
fn counted(count: usize, limit: Option<u32>) -> String {
    match limit {
        Some(limit) => format!("{count} of {limit} places taken"),
        None => format!(
            "{count} {} (the license sets no limit)",
            format::plural(count as u64, "user", "users")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_is_one_user() {
        assert_eq!(counted(1, None), "1 user (the license sets no limit)");
        assert_eq!(counted(0, None), "0 users (the license sets no limit)");
        assert_eq!(counted(2, None), "2 users (the license sets no limit)");
        assert_eq!(counted(1, Some(10)), "1 of 10 places taken");
    }
}
