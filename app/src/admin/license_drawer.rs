//! One license's details in a drawer beside the table: the facts the table leaves out (server
//! ID, who installed it and when, its end), every product rule, the license as JSON, and Remove.
//! It is a non-modal dialog: the table stays usable, Escape or Close shuts it, and it takes the
//! keyboard focus when it opens.

use leptos::{html, prelude::*};

use super::{
    license_table::{expiry_text, users_text},
    licenses::{Row, Status},
    task::{Task, TaskButton},
};
use crate::{auth::Auth, clock, format};

/// Who did something, when: `2026-12-07 10:00:00 by admin@local`.
fn when_by(at: time::OffsetDateTime, by: Option<&str>) -> String {
    match by {
        Some(by) => format!("{} by {by}", clock::local(at)),
        None => clock::local(at),
    }
}

#[component]
pub fn Drawer(
    row: Row,
    users: Option<u64>,
    removing: Task,
    remove: impl Fn(String) + Copy + Send + Sync + 'static,
    close: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let auth = Auth::get();
    let panel = NodeRef::<html::Div>::new();
    Effect::new(move || {
        if let Some(panel) = panel.get() {
            let _ = panel.focus();
        }
    });
    let (expires, expiry_class) = expiry_text(&row, clock::local);
    let users = users_text(&row, users);
    let issue = row.issue.clone();
    let license = row.license.clone();
    let key = row.key.clone();
    let removable = row.installed();
    let ended = issue.as_ref().and_then(|i| {
        i.removed.map(|at| {
            let what = if row.status == Status::Replaced {
                "Replaced"
            } else {
                "Removed"
            };
            (what, when_by(at, i.removed_by.as_deref()))
        })
    });
    let on_key = {
        let close = close.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            if ev.key() == "Escape" {
                close();
            }
        }
    };
    let close_click = close.clone();
    view! {
        <div
            class="drawer"
            role="dialog"
            aria-labelledby="drawer-title"
            tabindex="-1"
            node_ref=panel
            on:keydown=on_key
        >
            <header>
                <h3 id="drawer-title">{format!("License {}", row.key)}</h3>
                <span class=row.status.class()>{row.status.label()}</span>
                <button type="button" class="close" on:click=move |_| close_click()>
                    "Close"
                </button>
            </header>
            <dl class="facts">
                {license
                    .as_ref()
                    .map(|l| {
                        view! {
                            <dt>"Server ID"</dt>
                            <dd class="mono">{l.server_id.clone()}</dd>
                        }
                    })}
                <dt>"Serial"</dt>
                <dd>{row.serial}</dd>
                <dt>"Users"</dt>
                <dd>{users}</dd>
                <dt>"Issued"</dt>
                <dd>{license.as_ref().map_or_else(|| "—".to_owned(), |l| clock::local(l.rules.issued))}</dd>
                <dt>"Expires"</dt>
                <dd class=expiry_class>{expires}</dd>
                {issue
                    .as_ref()
                    .map(|i| {
                        view! {
                            <dt>"Installed"</dt>
                            <dd>{when_by(i.installed, i.installed_by.as_deref())}</dd>
                            <dt>"SHA-256"</dt>
                            <dd class="mono hash">{i.sha256.clone()}</dd>
                        }
                    })}
                {ended
                    .map(|(what, text)| {
                        view! {
                            <dt>{what}</dt>
                            <dd>{text}</dd>
                        }
                    })}
            </dl>
            {match license {
                None => {
                    view! {
                        <p class="hint">
                            "The ledger entry of this install predates the copy of the file: its rules are not known."
                        </p>
                    }
                        .into_any()
                }
                Some(license) => rules_view(&license).into_any(),
            }}
            <Show when=move || removable && auth.can_edit()>
                <TaskButton
                    task=removing
                    class="danger"
                    label=format!("Remove license {key}")
                    on_click={
                        let key = key.clone();
                        move || remove(key.clone())
                    }
                >
                    "Remove"
                </TaskButton>
            </Show>
        </div>
    }
}

fn rules_view(license: &models::License) -> impl IntoView {
    let json = serde_json::to_string_pretty(license).unwrap_or_default();
    view! {
        <h4>"Rules"</h4>
        <div class="table-wrap" tabindex="0">
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
                    {license
                        .rules
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
                                    <td class="num">{format::group_digits(i64::from(p.runcount))}</td>
                                    <td class="num">
                                        {format::group_digits(i64::try_from(p.credits).unwrap_or(i64::MAX))}
                                    </td>
                                    <td>{if p.postpay { "yes" } else { "no" }}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
        <details>
            <summary>"JSON"</summary>
            <pre class="rules">{json}</pre>
        </details>
    }
}
