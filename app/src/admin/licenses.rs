//! Licenses: every license installed and every issue the ledger says was removed or replaced, in
//! one compact table, the active one first; sorted and filtered in the browser (a server has a
//! few licenses, and the history lists at most 500 issues), with the sort, the filter and the
//! open drawer in the address. Install sits above the table; a row's drawer has its rules, its
//! JSON and Remove.

use std::cmp::Ordering;

use leptos::prelude::*;
use leptos_router::{
    hooks::{use_navigate, use_query_map},
    params::ParamsMap,
};
use models::{ErrorCode, License, LicenseIssue};
use time::OffsetDateTime;

use super::{
    license_install::{InstallForm, OfflineActivation},
    license_table::LicenseTable,
    shell::Shell,
    task::{Loaded, Task, loaded},
};
use crate::{
    address, api,
    auth::Auth,
    clock,
    feedback::{confirm, done_message},
    format::{self, Expiry, plural},
    paths::LICENSES_PATH,
};

/// Where a license stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Active,
    Expired,
    Replaced,
    Removed,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Replaced => "replaced",
            Self::Removed => "removed",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Self::Active => "badge ok",
            Self::Expired => "badge bad",
            Self::Replaced | Self::Removed => "badge muted",
        }
    }
}

/// One row: a license installed now, or an issue the history says is gone.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    pub serial: u64,
    /// The terms; `None` for an old issue whose ledger entry did not carry the file.
    pub license: Option<License>,
    pub status: Status,
    /// The admin API's active license: the valid one installed last, which licensed users are
    /// counted against.
    pub current: bool,
    /// What the ledger says of it: who installed it when, and its end.
    pub issue: Option<LicenseIssue>,
}

impl Row {
    /// What names the row in the address: the issue's hash, or the key of an installed license
    /// the history does not know yet.
    pub fn id(&self) -> String {
        self.issue
            .as_ref()
            .map_or_else(|| self.key.clone(), |i| i.sha256.clone())
    }

    pub fn installed(&self) -> bool {
        matches!(self.status, Status::Active | Status::Expired)
    }

    pub fn issued(&self) -> Option<OffsetDateTime> {
        self.license.as_ref().map(|l| l.rules.issued)
    }

    pub fn expires(&self) -> Option<OffsetDateTime> {
        self.license.as_ref().and_then(|l| l.rules.expires)
    }

    fn installed_at(&self) -> Option<OffsetDateTime> {
        self.issue.as_ref().map(|i| i.installed)
    }

    pub fn products(&self) -> Vec<String> {
        self.license.as_ref().map_or_else(Vec::new, |l| {
            l.rules
                .products
                .iter()
                .map(|p| format::product_label(&p.product, p.major_version))
                .collect()
        })
    }

    /// Seats and credits, summed over the products: `4 seats · 500 credits`.
    pub fn grants(&self) -> String {
        let Some(license) = &self.license else {
            return "—".to_owned();
        };
        let products = &license.rules.products;
        let seats: u64 = products.iter().map(|p| u64::from(p.runcount)).sum();
        let credits: u64 = products.iter().map(|p| p.credits).sum();
        let mut parts = Vec::new();
        if seats > 0 {
            parts.push(format!(
                "{} {}",
                group(seats),
                plural(seats, "seat", "seats")
            ));
        }
        if credits > 0 {
            parts.push(format!("{} credits", group(credits)));
        }
        if products.iter().any(|p| p.postpay) {
            parts.push("postpay".to_owned());
        }
        parts.join(" · ")
    }

    /// Whether the filter text is in what the row shows: key, products, serial.
    pub fn shows(&self, text: &str) -> bool {
        let text = text.trim().to_lowercase();
        text.is_empty()
            || self.key.to_lowercase().contains(&text)
            || self.serial.to_string().contains(&text)
            || self
                .products()
                .iter()
                .any(|p| p.to_lowercase().contains(&text))
    }
}

fn group(n: u64) -> String {
    format::group_digits(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The rows: the licenses installed (`active` the admin API's active key), then every issue of
/// `history` that was removed or replaced.
pub fn rows(
    installed: Vec<License>,
    active: Option<&str>,
    history: &[LicenseIssue],
    now: OffsetDateTime,
) -> Vec<Row> {
    let mut rows: Vec<Row> = installed
        .into_iter()
        .map(|license| Row {
            key: license.key.clone(),
            serial: license.rules.serial_number,
            status: if matches!(format::expiry(license.rules.expires, now), Expiry::Expired) {
                Status::Expired
            } else {
                Status::Active
            },
            current: active == Some(license.key.as_str()),
            // The history lists the latest install first: the issue installed now.
            issue: history
                .iter()
                .find(|i| i.key == license.key && i.removed.is_none())
                .cloned(),
            license: Some(license),
        })
        .collect();
    rows.extend(
        history
            .iter()
            .filter(|i| i.removed.is_some())
            .map(|issue| Row {
                key: issue.key.clone(),
                serial: issue.serial_number,
                license: issue.license.clone(),
                status: if issue.replaced_by.is_some() {
                    Status::Replaced
                } else {
                    Status::Removed
                },
                current: false,
                issue: Some(issue.clone()),
            }),
    );
    rows
}

/// The columns the table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Status,
    Key,
    Serial,
    Issued,
    Expires,
}

impl Sort {
    const ALL: [(Self, &'static str); 5] = [
        (Self::Status, "status"),
        (Self::Key, "key"),
        (Self::Serial, "serial"),
        (Self::Issued, "issued"),
        (Self::Expires, "expires"),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("status", |(_, n)| n)
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }
}

/// What the address holds: the sort, its direction, the filter text and the open drawer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub sort: Sort,
    pub descending: bool,
    pub filter: String,
    pub show: Option<String>,
}

impl View {
    fn from_query(query: &ParamsMap) -> Self {
        Self {
            sort: query
                .get("sort")
                .and_then(|s| Sort::from_name(&s))
                .unwrap_or(Sort::Status),
            descending: query.get("order").as_deref() == Some("desc"),
            filter: query.get("q").unwrap_or_default(),
            show: query.get("show").filter(|s| !s.is_empty()),
        }
    }

    fn address(&self) -> String {
        let mut pairs = Vec::new();
        if self.sort != Sort::Status {
            pairs.push(("sort", self.sort.name().to_owned()));
        }
        if self.descending {
            pairs.push(("order", "desc".to_owned()));
        }
        if !self.filter.is_empty() {
            pairs.push(("q", self.filter.clone()));
        }
        if let Some(show) = &self.show {
            pairs.push(("show", show.clone()));
        }
        format!("{LICENSES_PATH}{}", address::query(&pairs))
    }
}

/// Status order: the active license first, then by status, the latest install first. Others by
/// the column, a license that never expires after every date.
pub fn order(sort: Sort, a: &Row, b: &Row) -> Ordering {
    match sort {
        Sort::Status => b
            .current
            .cmp(&a.current)
            .then(a.status.cmp(&b.status))
            .then(b.installed_at().cmp(&a.installed_at()))
            .then(a.key.cmp(&b.key)),
        Sort::Key => a.key.cmp(&b.key),
        Sort::Serial => a.serial.cmp(&b.serial),
        Sort::Issued => a.issued().cmp(&b.issued()),
        Sort::Expires => match (a.expires(), b.expires()) {
            (Some(x), Some(y)) => x.cmp(&y),
            (x, y) => y.is_some().cmp(&x.is_some()),
        },
    }
    .then_with(|| a.key.cmp(&b.key))
}

/// What the screen loaded.
#[derive(Debug, Clone, Default)]
pub struct LicenseList {
    pub rows: Vec<Row>,
    /// Licensed users counted against the active license.
    pub users: Option<u64>,
    pub complete: bool,
}

async fn load(auth: Auth) -> Result<LicenseList, String> {
    let tokens = auth.tokens();
    let fail = |e: &api::Error| auth.fail(e);
    let licenses = api::licenses(tokens.as_ref()).await.map_err(|e| fail(&e))?;
    let active = match api::active_license(tokens.as_ref()).await {
        Ok(answer) => Some(answer.license.key),
        Err(e) if e.code() == Some(ErrorCode::LicenseKeyNotFound) => None,
        Err(e) => return Err(fail(&e)),
    };
    let history = api::license_history(tokens.as_ref())
        .await
        .map_err(|e| fail(&e))?;
    let users = match &active {
        Some(_) => api::licensed_users(tokens.as_ref())
            .await
            .ok()
            .map(|u| u.license.num_authenticated_users),
        None => None,
    };
    Ok(LicenseList {
        rows: rows(licenses, active.as_deref(), &history.licenses, clock::now()),
        users,
        complete: history.complete,
    })
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
    let query = use_query_map();
    let view_state = Memo::new(move |_| query.with(View::from_query));
    let navigate = use_navigate();
    let show = move |next: View| address::show(&navigate, &next.address());
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
        <Show when=move || auth.can_edit()>
            <InstallForm on_installed=on_installed />
        </Show>
        <section class="panel" id="licenses" aria-labelledby="licenses-title">
            <h3 id="licenses-title">"Licenses"</h3>
            {removing.error_view()}
            {move || removed.get().map(done_message)}
            {loaded(
                installed,
                move |loaded: LicenseList| {
                    if loaded.rows.is_empty() {
                        return view! {
                            <p class="placeholder">
                                "No license is installed. Install a license file above, or activate one from the vendor."
                            </p>
                        }
                            .into_any();
                    }
                    let show = show.clone();
                    view! {
                        <LicenseTable
                            loaded
                            view_state
                            show
                            just_installed
                            removing
                            remove
                        />
                    }
                        .into_any()
                },
            )}
        </section>
        <Show when=move || auth.can_edit()>
            <OfflineActivation />
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use models::{ProductRule, Rules};
    use time::macros::datetime;

    use super::*;
    use crate::admin::license_table::users_text;

    fn license(key: &str, serial: u64, expires: Option<OffsetDateTime>) -> License {
        License {
            key: key.to_owned(),
            server_id: "S".to_owned(),
            rules: Rules {
                serial_number: serial,
                issued: datetime!(2026-01-01 0:00 UTC),
                expires,
                max_users: Some(5),
                products: vec![ProductRule {
                    product_id: 7,
                    major_version: 2,
                    product: "Tool".to_owned(),
                    runcount: 4,
                    credits: 1500,
                    postpay: false,
                }],
            },
        }
    }

    fn issue(
        key: &str,
        sha: &str,
        installed: OffsetDateTime,
        removed: bool,
        replaced: bool,
    ) -> LicenseIssue {
        LicenseIssue {
            key: key.to_owned(),
            serial_number: 9,
            sha256: sha.to_owned(),
            installed,
            installed_by: Some("admin@local".to_owned()),
            removed: removed.then_some(installed + time::Duration::days(1)),
            removed_by: removed.then(|| "admin@local".to_owned()),
            replaced_by: replaced.then(|| "newer".to_owned()),
            license: None,
        }
    }

    #[test]
    fn the_active_license_comes_first_then_expired_then_what_is_gone() {
        let now = datetime!(2026-06-01 0:00 UTC);
        let history = [
            issue("NEW", "n", datetime!(2026-05-01 0:00 UTC), false, false),
            issue("OLD", "o", datetime!(2026-04-01 0:00 UTC), false, false),
            issue("NEW", "r", datetime!(2026-03-01 0:00 UTC), true, true),
            issue("GONE", "g", datetime!(2026-02-01 0:00 UTC), true, false),
        ];
        let mut all = rows(
            vec![
                license("OLD", 1, None),
                license("DEAD", 3, Some(datetime!(2026-05-01 0:00 UTC))),
                license("NEW", 2, Some(datetime!(2026-06-10 0:00 UTC))),
            ],
            Some("NEW"),
            &history,
            now,
        );
        all.sort_by(|a, b| order(Sort::Status, a, b));
        let seen: Vec<(&str, Status)> = all.iter().map(|r| (r.key.as_str(), r.status)).collect();
        assert_eq!(
            seen,
            [
                ("NEW", Status::Active),
                ("OLD", Status::Active),
                ("DEAD", Status::Expired),
                ("NEW", Status::Replaced),
                ("GONE", Status::Removed),
            ]
        );
        assert_eq!(all[0].id(), "n", "the installed issue is the history's");
        assert_eq!(all[2].id(), "DEAD", "unknown to the history: named by key");
        assert_eq!(users_text(&all[0], Some(3)), "3 of 5");
        assert_eq!(users_text(&all[1], Some(3)), "up to 5");
        assert_eq!(all[0].grants(), "4 seats · 1\u{202f}500 credits");
        assert!(all[0].shows("too") && all[0].shows("2") && !all[0].shows("zzz"));
        // By expiry: the dated ones in order, never last, the gone ones (no terms) too.
        all.sort_by(|a, b| order(Sort::Expires, a, b));
        let keys: Vec<&str> = all.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys[..2], ["DEAD", "NEW"]);
    }
}
