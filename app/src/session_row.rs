//! The sessions table's columns and rows: the status page's reference columns (Session ID,
//! Product ID, Status, Host, Product, Type, Started), then Ended, Duration and User.

use leptos::prelude::*;
use models::{SessionSort, SessionStatus};

use crate::{
    clock::{self, timestamp},
    format,
};

/// A column header; `sort` when a click on it sorts.
pub struct Column {
    pub label: &'static str,
    pub numeric: bool,
    pub sort: Option<SessionSort>,
}

pub const COLUMNS: &[Column] = &[
    Column {
        label: "Session ID",
        numeric: true,
        sort: Some(SessionSort::SessionId),
    },
    Column {
        label: "Product ID",
        numeric: true,
        sort: None,
    },
    Column {
        label: "Status",
        numeric: false,
        sort: Some(SessionSort::Status),
    },
    Column {
        label: "Host",
        numeric: false,
        sort: Some(SessionSort::Host),
    },
    Column {
        label: "Product",
        numeric: false,
        sort: Some(SessionSort::Product),
    },
    Column {
        label: "Type",
        numeric: false,
        sort: None,
    },
    Column {
        label: "Started",
        numeric: false,
        sort: Some(SessionSort::Started),
    },
    Column {
        label: "Ended",
        numeric: false,
        sort: None,
    },
    Column {
        label: "Duration",
        numeric: true,
        sort: None,
    },
    Column {
        label: "User",
        numeric: false,
        sort: None,
    },
];

/// One session's row. A running session shows the licenses it holds; one that ended, the
/// products it was granted (dimmed), with when it ended and how long it ran.
pub fn session_row(
    session: models::Session,
    can_release: bool,
    release: impl Fn(u64) + Clone + 'static,
) -> impl IntoView {
    let running = session.status == SessionStatus::Running;
    let shown = if running {
        &session.licenses
    } else {
        &session.granted
    };
    // A session may hold several licenses: one line each in the license columns.
    let lines = |f: &dyn Fn(&models::HeldLicense) -> String| {
        if shown.is_empty() {
            "—".to_owned()
        } else {
            shown.iter().map(f).collect::<Vec<_>>().join("\n")
        }
    };
    let product_ids = lines(&|l| l.product_id.to_string());
    let products = lines(&|l| format::product_label(&l.product, l.major_version));
    let types = lines(&|l| format::license_type(l).to_owned());
    let license_class = if running { "lines" } else { "lines past" };
    let status = format::session_status(session.status);
    let host_title = session.ip_address.to_string();
    let user = session.user.as_ref().map_or_else(
        || "—".to_owned(),
        |u| format!("{} ({})", u.principal, u.realm),
    );
    let duration = format::duration(session.ended.unwrap_or_else(clock::now) - session.started);
    let id = session.session_id;
    let action = can_release.then(|| {
        view! {
            <td>
                {running
                    .then(|| {
                        view! {
                            <button
                                type="button"
                                class="danger"
                                aria-label=format!("Release session {id}")
                                on:click=move |_| release(id)
                            >
                                "Release"
                            </button>
                        }
                    })}
            </td>
        }
    });
    let message = (!session.message.is_empty()).then(|| {
        view! { <span class="message">{session.message.clone()}</span> }
    });
    view! {
        <tr>
            <td class="num">{session.session_id}</td>
            <td class=format!("num {license_class}")>{product_ids}</td>
            <td class=format!("status {status}")>{status}</td>
            <td title=host_title>
                <span class="host">{session.host}</span>
                {message}
            </td>
            <td class=license_class>{products}</td>
            <td class=license_class>{types}</td>
            {timestamp(session.started)}
            {match session.ended {
                Some(ended) => timestamp(ended).into_any(),
                None => view! { <td>"—"</td> }.into_any(),
            }}
            <td class="num">{duration}</td>
            <td>{user}</td>
            {action}
        </tr>
    }
}
