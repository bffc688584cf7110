//! The API port's router, called in-process.

use std::net::IpAddr;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::support::{self, LICENSE_PORT, assert_api_error, call, get};

#[tokio::test]
async fn data_json_has_the_three_arrays_and_this_server() {
    let app = support::app().await;
    let router = server::api_port(app.state.clone());
    let answer = get(&router, "/status/data.json").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header("content-type")
            .starts_with("application/json")
    );
    assert_eq!(answer.header("cache-control"), "no-store");
    let data = answer.json();

    let mut top: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    top.sort_unstable();
    assert_eq!(top, ["cartridges", "servers", "sessions"]);
    assert_eq!(data["cartridges"], Value::Array(vec![]));
    assert_eq!(data["sessions"], Value::Array(vec![]));
    let servers = data["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    let server = servers[0].as_object().unwrap();

    let mut fields: Vec<&str> = server.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "build",
            "coordinator",
            "hostname",
            "ip_address",
            "platform",
            "port",
            "serial_number",
            "server_id",
            "started",
            "status",
            "version"
        ]
    );
    let id = app.state.identity.server_id.to_string();
    assert_eq!(server["server_id"], id.as_str());
    assert!(
        id.len() >= 32
            && id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    assert_eq!(
        server["coordinator"],
        id.as_str(),
        "a single server coordinates itself"
    );
    assert_eq!(server["status"], "running");
    assert_eq!(
        server["serial_number"], "200000510",
        "a string, as the spec says"
    );
    assert_eq!(server["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        server["build"], "development",
        "tests run a build without compiled-in vendor keys"
    );
    assert_eq!(server["hostname"], server::hostname().as_str());
    assert_eq!(server["port"], LICENSE_PORT, "the license port, a number");
    let ip: IpAddr = server["ip_address"].as_str().unwrap().parse().unwrap();
    assert!(!ip.is_unspecified());
    let platform = server["platform"].as_str().unwrap();
    assert!(platform.contains(std::env::consts::ARCH), "{platform}");
    let started = OffsetDateTime::parse(server["started"].as_str().unwrap(), &Rfc3339).unwrap();
    let age = OffsetDateTime::now_utc() - started;
    assert!(
        age.whole_seconds() >= 0 && age.whole_minutes() < 5,
        "started {started}"
    );
}

#[tokio::test]
async fn a_pool_header_is_accepted_and_a_bad_one_refused() {
    let app = support::app().await;
    let router = server::api_port(app.state.clone());
    let plain = get(&router, "/status/data.json").await.json();

    let pooled = call(
        &router,
        Method::GET,
        "/status/data.json",
        &[("X-Pool-ID", "render farm")],
    )
    .await;
    assert_eq!(pooled.status, StatusCode::OK);
    assert_eq!(pooled.json(), plain, "nothing is assigned to pools yet");

    let long = "p".repeat(65);
    let refused = call(
        &router,
        Method::GET,
        "/status/data.json",
        &[("X-Pool-ID", &long)],
    )
    .await;
    assert_api_error(&refused, StatusCode::BAD_REQUEST, "INVALID_POOL_ID");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = support::app().await;
    let router = server::api_port(app.state.clone());
    assert_api_error(
        &get(&router, "/nope").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_api_error(
        &get(&router, "/assets/nope.js").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let post = call(&router, Method::POST, "/status/data.json", &[]).await;
    assert_api_error(&post, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn the_root_and_status_dir_lead_to_the_status_page() {
    let app = support::app().await;
    let router = server::api_port(app.state.clone());
    for path in ["/", "/status", "/status/"] {
        let answer = get(&router, path).await;
        assert!(answer.status.is_redirection(), "{path}: {}", answer.status);
        assert_eq!(answer.header("location"), "/status/index.html", "{path}");
    }
    // The admin screens are the app's routes: any address under /admin gets the page (the app
    // shows the screen), and /admin/ goes to /admin like the status directory does.
    let answer = get(&router, "/admin/").await;
    assert!(answer.status.is_redirection(), "{}", answer.status);
    assert_eq!(answer.header("location"), "/admin");
    for path in [
        "/admin",
        "/admin/users",
        "/admin/login?next=%2Fadmin%2Fusers",
    ] {
        let answer = get(&router, path).await;
        assert_ne!(answer.status, 404, "{path}");
        assert_ne!(answer.header("content-type"), "application/json", "{path}");
    }
}

#[tokio::test]
async fn answers_carry_security_headers() {
    let app = support::app().await;
    let router = server::api_port(app.state.clone());
    let answer = get(&router, "/status/data.json").await;
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    assert_eq!(answer.header("x-frame-options"), "DENY");
    assert!(
        answer
            .header("content-security-policy")
            .contains("default-src 'none'")
    );
}

/// Each page and every file it names, as a browser would load them. Without an embedded UI (a
/// build without `make build`) a page must say how to get one instead.
///
/// The status page and the admin screens are two bundles: the public page must not download the
/// admin screens' code, and each page's CSP allows its own loader script only.
#[tokio::test]
async fn the_status_page_and_the_admin_page_are_served_each_with_its_bundle() {
    let app = support::app().await;
    let router = server::api_port(app.state.clone());
    let status = get(&router, "/status/index.html").await;
    if status.status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(status.text().contains("make build"), "{}", status.text());
        return;
    }
    let admin = get(&router, "/admin/licenses").await;
    let status_wasm = page_and_assets(&router, &status, "/assets/status/").await;
    let admin_wasm = page_and_assets(&router, &admin, "/assets/admin/").await;
    assert!(
        status_wasm < admin_wasm * 3 / 4,
        "the status page's bundle ({status_wasm} bytes) should be well under the admin \
         bundle ({admin_wasm} bytes)"
    );
    assert_ne!(
        status.header("content-security-policy"),
        admin.header("content-security-policy"),
        "each page allows its own loader script"
    );
}

/// Checks a page and loads every file it names; returns the size of its wasm, as served (br).
async fn page_and_assets(router: &axum::Router, page: &support::Answer, prefix: &str) -> usize {
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-cache");
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    let html = page.text();
    // A set: the page names its wasm twice (preload and loader).
    let assets: std::collections::BTreeSet<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert!(assets.iter().any(|a| a.ends_with(".wasm")), "{html}");
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{html}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{html}");
    let mut wasm = 0;
    for asset in assets {
        assert!(asset.starts_with(prefix), "{asset} outside {prefix}");
        let answer = call(
            router,
            Method::GET,
            asset,
            &[("accept-encoding", "br, gzip")],
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert_eq!(
            answer.header("cache-control"),
            "public, max-age=31536000, immutable",
            "{asset}"
        );
        assert_eq!(answer.header("content-encoding"), "br", "{asset}");
        let expected = match asset.rsplit('.').next() {
            Some("wasm") => {
                wasm += answer.body.len();
                "application/wasm"
            }
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            other => panic!("unexpected asset type {other:?}"),
        };
        assert_eq!(answer.header("content-type"), expected, "{asset}");
        let etag = answer.header("etag").to_owned();
        let again = call(
            router,
            Method::GET,
            asset,
            &[("accept-encoding", "br"), ("if-none-match", &etag)],
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{asset}");
    }
    // A page is not an asset: it is served at its own address, with its CSP.
    let bare = prefix.to_owned() + "index.html";
    assert_eq!(
        get(router, &bare).await.status,
        StatusCode::NOT_FOUND,
        "{bare}"
    );
    wasm
}

/// The committed OpenAPI documents are what the code generates (run with `UPDATE_OPENAPI=1` to
/// rewrite them after a change), each port serves its own, and every documented path and method
/// reaches a handler.
#[tokio::test]
async fn the_openapi_documents_are_current_served_and_routed() {
    let app = support::app().await;
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let ports = [
        (
            "license-port",
            server::license_port_doc(),
            server::license_port(app.state.clone())
                .layer(axum::extract::connect_info::MockConnectInfo(peer)),
        ),
        (
            "api-port",
            server::api_port_doc(),
            server::api_port(app.state.clone()),
        ),
    ];
    // The combined document of /server/openapi.json holds both; its license protocol paths are
    // routed on the other port, checked above.
    let combined = server::combined_doc();
    let combined_text = serde_json::to_string_pretty(&combined).unwrap() + "\n";
    let combined_file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/server.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&combined_file, &combined_text).unwrap();
    }
    assert!(
        std::fs::read_to_string(&combined_file).unwrap_or_default() == combined_text,
        "{} is out of date: run `UPDATE_OPENAPI=1 cargo test -p server --test it openapi`",
        combined_file.display()
    );
    let api_router = server::api_port(app.state.clone());
    let served = get(&api_router, "/server/openapi.json").await;
    assert_eq!(served.json(), serde_json::to_value(&combined).unwrap());
    assert_eq!(served.header("cache-control"), "no-store");
    for (name, doc, router) in ports {
        let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("openapi")
            .join(format!("{name}.json"));
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&file, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == text,
            "{} is out of date: run `UPDATE_OPENAPI=1 cargo test -p server --test it openapi` and commit it",
            file.display()
        );

        let served = get(&router, "/openapi.json").await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(served.json(), serde_json::to_value(&doc).unwrap());

        let doc = serde_json::to_value(&doc).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(!paths.is_empty());
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut uri = path
                    .replace("{session_id}", "1")
                    .replace("{license_id}", "1");
                // A stream never ends: asked with a query it refuses, it answers at once.
                if item[method.as_str().to_lowercase()]["responses"]["200"]["content"]
                    .get("text/event-stream")
                    .is_some()
                {
                    uri.push_str("?colour=blue");
                }
                let answer = support::call_with_body(
                    &router,
                    method.clone(),
                    &uri,
                    &[("content-type", "application/json")],
                    "{}",
                )
                .await;
                let routed = answer.status != StatusCode::METHOD_NOT_ALLOWED
                    && !(answer.status == StatusCode::NOT_FOUND
                        && answer.json()["error"]["code"] == "NOT_FOUND");
                assert!(
                    routed,
                    "{name}: {method} {path} is documented but not routed"
                );
            }
        }
    }
}
