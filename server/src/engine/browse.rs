//! Sorting, filtering and paging the sessions table on the server (`GET /status/sessions.json`).
//!
//! A busy server keeps a hundred thousand sessions; sending them all to a browser every few
//! seconds would make the status page the heaviest client the server has. The page asks for one
//! page instead, and the engine hands this module a borrowed [`Row`] per session, so that
//! filtering copies nothing and only the sessions on the page are turned into wire types.

use std::cmp::Ordering;

use models::{SessionQuery, SessionSort, SessionStatus, SortOrder, User};
use time::OffsetDateTime;

/// A session as the filters see it, borrowed from the engine's state.
#[derive(Debug)]
pub struct Row<'a> {
    pub session_id: u64,
    pub status: SessionStatus,
    pub host: &'a str,
    pub user: Option<&'a User>,
    pub started: OffsetDateTime,
    pub message: &'a str,
    /// `(product_id, product name)` of what the table shows: the licenses held by a running
    /// session, the products an ended one was granted.
    pub products: Vec<(u32, &'a str)>,
}

/// The filters of a query, prepared once for every row.
struct Filter {
    status: Option<SessionStatus>,
    host: Option<String>,
    product: Option<String>,
    text: Option<String>,
}

impl Filter {
    fn new(query: &SessionQuery) -> Self {
        let needle = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase)
        };
        Self {
            status: query.status,
            host: needle(&query.host),
            product: needle(&query.product),
            text: needle(&query.q),
        }
    }

    fn matches(&self, row: &Row<'_>) -> bool {
        if self.status.is_some_and(|s| s != row.status) {
            return false;
        }
        if let Some(host) = &self.host
            && !contains(row.host, host)
        {
            return false;
        }
        if let Some(product) = &self.product
            && !row.products.iter().any(|p| product_matches(*p, product))
        {
            return false;
        }
        // The search looks at what the table shows, nothing else.
        if let Some(text) = &self.text {
            return contains(&row.session_id.to_string(), text)
                || contains(row.host, text)
                || contains(row.message, text)
                || row
                    .user
                    .is_some_and(|u| contains(&u.principal, text) || contains(&u.realm, text))
                || row.products.iter().any(|p| product_matches(*p, text));
        }
        true
    }
}

fn product_matches((id, name): (u32, &str), needle: &str) -> bool {
    contains(name, needle) || needle.parse::<u32>() == Ok(id)
}

/// `needle` (already lowercase) occurs in `haystack`, ignoring ASCII case. No allocation: this
/// runs for every session on every poll.
fn contains(haystack: &str, needle: &str) -> bool {
    let (hay, needle) = (haystack.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Orders by the sorts that need no text key (see `select` for those).
fn compare(a: &Row<'_>, b: &Row<'_>, sort: SessionSort) -> Ordering {
    let by = match sort {
        SessionSort::Status => a.status.as_str().cmp(b.status.as_str()),
        SessionSort::Started => a.started.cmp(&b.started),
        SessionSort::SessionId | SessionSort::Host | SessionSort::Product => Ordering::Equal,
    };
    by.then(a.session_id.cmp(&b.session_id))
}

/// The ids of the rows on the requested page, in order, and how many rows matched.
pub fn select(rows: Vec<Row<'_>>, query: &SessionQuery) -> (u64, Vec<u64>) {
    let filter = Filter::new(query);
    let mut rows: Vec<Row<'_>> = rows.into_iter().filter(|r| filter.matches(r)).collect();
    let matched = rows.len() as u64;
    let limit = query.limit.clamp(1, models::MAX_PAGE) as usize;
    let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
    let order = |o: Ordering| match query.order {
        SortOrder::Asc => o,
        SortOrder::Desc => o.reverse(),
    };
    if query.sort == SessionSort::SessionId {
        // Rows come in id order already: no sort, just walk from the right end.
        if query.order == SortOrder::Desc {
            rows.reverse();
        }
    } else {
        // Lowercasing in the comparator allocates; cache the keys for the sorts that need it.
        match query.sort {
            SessionSort::Host | SessionSort::Product => {
                let mut keyed: Vec<(String, Row<'_>)> = rows
                    .into_iter()
                    .map(|r| {
                        let key = match query.sort {
                            SessionSort::Host => r.host.to_lowercase(),
                            _ => r
                                .products
                                .first()
                                .map(|p| p.1.to_lowercase())
                                .unwrap_or_default(),
                        };
                        (key, r)
                    })
                    .collect();
                keyed.sort_by(|(ka, a), (kb, b)| {
                    order(ka.cmp(kb).then(a.session_id.cmp(&b.session_id)))
                });
                rows = keyed.into_iter().map(|(_, r)| r).collect();
            }
            _ => rows.sort_by(|a, b| order(compare(a, b, query.sort))),
        }
    }
    let ids = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| r.session_id)
        .collect();
    (matched, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    static ALICE: std::sync::LazyLock<User> = std::sync::LazyLock::new(|| User {
        realm: "corp".into(),
        principal: "alice".into(),
    });

    fn row(
        id: u64,
        status: SessionStatus,
        host: &'static str,
        product: &'static str,
    ) -> Row<'static> {
        Row {
            session_id: id,
            status,
            host,
            user: (id == 4).then_some(&*ALICE),
            started: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(id as i64),
            message: if id == 3 { "nightly build" } else { "" },
            products: if product.is_empty() {
                vec![]
            } else {
                vec![(1000, product)]
            },
        }
    }

    fn rows() -> Vec<Row<'static>> {
        use SessionStatus::*;
        vec![
            row(1, Finished, "build-b", "pdfToolbox"),
            row(2, Running, "Build-A", "pdfToolbox"),
            row(3, Dropped, "ci-3", ""),
            row(4, Running, "build-c", "Preflight"),
        ]
    }

    fn ids(query: SessionQuery) -> (u64, Vec<u64>) {
        select(rows(), &query)
    }

    #[test]
    fn newest_first_by_default_and_pages_are_slices() {
        assert_eq!(ids(SessionQuery::default()), (4, vec![4, 3, 2, 1]));
        let page = SessionQuery {
            offset: 1,
            limit: 2,
            ..Default::default()
        };
        assert_eq!(ids(page), (4, vec![3, 2]));
    }

    #[test]
    fn sorts_ignore_case_and_break_ties_by_id() {
        let by_host = SessionQuery {
            sort: SessionSort::Host,
            order: SortOrder::Asc,
            ..Default::default()
        };
        assert_eq!(ids(by_host).1, vec![2, 1, 4, 3]);
        let by_status = SessionQuery {
            sort: SessionSort::Status,
            order: SortOrder::Asc,
            ..Default::default()
        };
        assert_eq!(ids(by_status).1, vec![3, 1, 2, 4]);
        let by_product = SessionQuery {
            sort: SessionSort::Product,
            order: SortOrder::Desc,
            ..Default::default()
        };
        // "preflight" > "pdftoolbox"; equal names newest first; no license last.
        assert_eq!(ids(by_product).1, vec![4, 2, 1, 3]);
    }

    #[test]
    fn filters_combine() {
        let running_builds = SessionQuery {
            status: Some(SessionStatus::Running),
            host: Some("BUILD".into()),
            ..Default::default()
        };
        assert_eq!(ids(running_builds), (2, vec![4, 2]));
        let by_product_id = SessionQuery {
            product: Some("1000".into()),
            ..Default::default()
        };
        assert_eq!(ids(by_product_id).0, 3);
        let free_text = SessionQuery {
            q: Some("nightly".into()),
            ..Default::default()
        };
        assert_eq!(ids(free_text), (1, vec![3]));
        let user = SessionQuery {
            q: Some("ALICE".into()),
            ..Default::default()
        };
        assert_eq!(ids(user).1, vec![4]);
        // The address is not shown in the table, so it is not searched either.
        let address = SessionQuery {
            q: Some("10.0.0.4".into()),
            ..Default::default()
        };
        assert_eq!(ids(address).0, 0);
    }

    #[test]
    fn a_page_past_the_end_is_empty_not_an_error() {
        let far = SessionQuery {
            offset: 1_000_000,
            ..Default::default()
        };
        assert_eq!(ids(far), (4, vec![]));
    }
}
