//! Views kept in the page's address, so a reload, a bookmark or a shared link shows the same:
//! query strings written in one place ([`query`], [`replaced`]), and the sessions table's query
//! (`?status=dropped&host=ci&sort=started`) beside the page's own parameters (the pool).

use leptos_router::{NavigateOptions, params::ParamsMap};
use models::{SessionQuery, SessionStatus};

/// An address's parameters, in order (the last value of each name).
pub type Params = Vec<(String, String)>;

/// The parameters of `map`.
pub fn params_of(map: &ParamsMap) -> Params {
    map.latest_values()
        .map(|(name, value)| (name.to_string(), value.to_owned()))
        .collect()
}

fn get(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The table's parameters; any other belongs to the page.
const PARAMS: [&str; 8] = [
    "offset", "limit", "sort", "order", "status", "host", "product", "q",
];

/// The table's query as `params` describe it; `default_status` (the view's own filter, e.g.
/// running sessions on the admin screen) when they name no status. `status=all` is none.
pub fn query_from(
    params: &[(String, String)],
    default_status: Option<SessionStatus>,
) -> SessionQuery {
    let mut query = SessionQuery::from_params(|name| get(params, name));
    if get(params, "status").is_none() {
        query.status = default_status;
    }
    query
}

/// `path` with the table's parameters set to `query`'s, the page's own ones of `params` kept.
pub fn address(
    path: &str,
    params: &[(String, String)],
    query: &SessionQuery,
    default_status: Option<SessionStatus>,
) -> String {
    replaced(path, params, &PARAMS, table_params(query, default_status))
}

/// The table's parameters for `query`: its own, and the status when it is not the view's default.
fn table_params(
    query: &SessionQuery,
    default_status: Option<SessionStatus>,
) -> Vec<(&'static str, String)> {
    let mut set: Vec<_> = query
        .params()
        .into_iter()
        .filter(|(name, _)| *name != "status")
        .collect();
    if query.status != default_status {
        let status = query.status.map_or("all", SessionStatus::as_str);
        set.push(("status", status.to_owned()));
    }
    set
}

/// `path` with `params` but those named in `names` replaced by `set` (values encoded here:
/// `ParamsMap::insert` would decode a `%` in a filter).
pub fn replaced(
    path: &str,
    params: &[(String, String)],
    names: &[&str],
    set: Vec<(&'static str, String)>,
) -> String {
    format!("{path}{}", query(&pairs(params, names, set)))
}

/// `path` with the pool `name` (empty: the default pool) in the parameters of `params`, the
/// others (the sessions table's) kept.
pub fn with_pool(path: &str, params: &ParamsMap, name: &str) -> String {
    let named = if name.is_empty() {
        Vec::new()
    } else {
        vec![("pool", name.to_owned())]
    };
    replaced(path, &params_of(params), &["pool"], named)
}

/// Goes to `address` in place of the current one (a view changed, not a new page): no entry in
/// the history, no scroll.
pub fn show(navigate: &impl Fn(&str, NavigateOptions), address: &str) {
    navigate(
        address,
        NavigateOptions {
            replace: true,
            scroll: false,
            ..Default::default()
        },
    );
}

/// `?name=value&…` with every name and value encoded; empty without pairs.
pub fn query<K: AsRef<str>>(pairs: &[(K, String)]) -> String {
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                js_sys::encode_uri_component(name.as_ref()),
                js_sys::encode_uri_component(value)
            )
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

fn pairs(params: &[(String, String)], names: &[&str], set: Vec<(&'static str, String)>) -> Params {
    params
        .iter()
        .filter(|(name, _)| !names.contains(&name.as_str()))
        .cloned()
        .chain(
            set.into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_pool_stays_and_the_view_default_status_is_left_out() {
        let running = Some(SessionStatus::Running);
        let page = params(&[("pool", "farm"), ("host", "old")]);
        let mut query = query_from(&page, running);
        assert_eq!(query.status, running, "the view's default");
        assert_eq!(query.host.as_deref(), Some("old"));
        query.host = Some("50% ci".to_owned());
        query.offset = 50;
        let written = pairs(&page, &PARAMS, table_params(&query, running));
        let get = |name: &str| get(&written, name);
        assert_eq!(get("pool").as_deref(), Some("farm"));
        assert_eq!(get("host").as_deref(), Some("50% ci"), "not decoded");
        assert_eq!(get("offset").as_deref(), Some("50"));
        assert_eq!(get("status"), None);
        assert_eq!(SessionQuery::from_params(get).host, query.host);
        // Every status, on a view that shows running ones by default: said, and read back.
        query.status = None;
        assert!(table_params(&query, running).contains(&("status", "all".to_owned())));
        let back = params(&[("pool", "farm"), ("status", "all")]);
        assert_eq!(query_from(&back, running).status, None);
    }
}
