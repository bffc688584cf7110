//! The web UI, embedded in the binary by `build.rs` and served from memory.
//!
//! There are two pages, each with its own bundle: the status page (`status/`) and the admin
//! screens (`admin/`), so that the public page does not carry the admin screens' code.
//!
//! Trunk fingerprints the files it builds (`status-<hash>.js`); those never change under their
//! name and are cached by browsers for a year. A page names the current fingerprints, so it is
//! revalidated on every load (`no-cache` + ETag). Each file was compressed at build time with
//! brotli and gzip; a request gets the best encoding it accepts, with no work per request.

use axum::{
    body::Body,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use models::ErrorCode;

use super::error::AppError;

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Path under the dist directory, `/`-separated.
    pub path: &'static str,
    pub content_type: &'static str,
    /// Hex digest of the content; the ETag of each encoding derives from it.
    pub etag: &'static str,
    /// Fingerprinted by trunk: its name changes when its content does.
    pub immutable: bool,
    pub identity: &'static [u8],
    /// Absent when compression would not save at least a tenth.
    pub gzip: Option<&'static [u8]>,
    pub brotli: Option<&'static [u8]>,
    /// For a page: the `'sha256-…'` sources of its inline scripts (trunk's loader), for its CSP.
    pub script_hashes: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The status page's bundle, `status/` under `app/dist/`.
const STATUS_INDEX: &str = "status/index.html";
/// The admin screens' bundle.
const ADMIN_INDEX: &str = "admin/index.html";

/// A page's policy: scripts only from this origin plus trunk's inline loader (by hash), wasm
/// compilation allowed, data only from this origin, no framing.
fn page_csp(page: &Asset) -> String {
    let scripts = page.script_hashes.join(" ");
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {scripts}; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'; object-src 'none'"
    )
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// `GET /status/index.html`: the status page, with its own small bundle.
pub async fn status_page(headers: HeaderMap) -> Response {
    page(STATUS_INDEX, &headers)
}

/// `GET /admin` and the admin screens under it: the admin bundle's page.
pub async fn admin_page(headers: HeaderMap) -> Response {
    page(ADMIN_INDEX, &headers)
}

fn page(path: &str, headers: &HeaderMap) -> Response {
    match find(path) {
        Some(page) => {
            let mut response = respond(page, headers);
            if let Ok(csp) = HeaderValue::from_str(&page_csp(page)) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            response
        }
        None => ui_not_built(),
    }
}

/// `GET /assets/{*path}`: what trunk built, as named in `index.html`.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    match find(&path) {
        // A page is served at its own address, with its CSP; never as a bare asset.
        Some(asset) if !asset.path.ends_with("index.html") => Ok(respond(asset, &headers)),
        _ => Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no such asset: /assets/{path}"),
        )),
    }
}

/// `GET /robots.txt`: from `public/`. A license server's status page has no business in a
/// search index.
pub async fn robots(headers: HeaderMap) -> Response {
    match find("status/robots.txt") {
        Some(asset) => respond(asset, &headers),
        None => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "User-agent: *\nDisallow: /\n",
        )
            .into_response(),
    }
}

fn ui_not_built() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, REVALIDATE),
        ],
        "<!doctype html><title>License Server</title><h1>Web UI not built</h1>\
         <p>This license-server binary was built without its web UI. Build it with \
         <code>make build</code>. The status data is at \
         <a href=\"/status/data.json\">/status/data.json</a>.</p>",
    )
        .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// The answer for `asset` given the request's `Accept-Encoding` and `If-None-Match`.
pub fn respond(asset: &Asset, request: &HeaderMap) -> Response {
    let accepted = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (encoding, body) = match (asset.brotli, asset.gzip) {
        (Some(br), _) if accepts(accepted, "br") => (Encoding::Brotli, br),
        (_, Some(gz)) if accepts(accepted, "gzip") => (Encoding::Gzip, gz),
        _ => (Encoding::Identity, asset.identity),
    };
    let etag = match encoding {
        Encoding::Brotli => format!("\"{}-br\"", asset.etag),
        Encoding::Gzip => format!("\"{}-gz\"", asset.etag),
        Encoding::Identity => format!("\"{}\"", asset.etag),
    };
    let cache = if asset.immutable {
        IMMUTABLE
    } else {
        REVALIDATE
    };

    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, "accept-encoding");
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    if not_modified {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        return builder.body(Body::empty()).unwrap_or_default();
    }
    builder = builder.header(header::CONTENT_TYPE, asset.content_type);
    builder = match encoding {
        Encoding::Brotli => builder.header(header::CONTENT_ENCODING, "br"),
        Encoding::Gzip => builder.header(header::CONTENT_ENCODING, "gzip"),
        Encoding::Identity => builder,
    };
    builder.body(Body::from(body)).unwrap_or_default()
}

/// Whether an `Accept-Encoding` value accepts `coding` (an explicit `q=0` refuses it; `*`
/// accepts anything not named).
fn accepts(header_value: &str, coding: &str) -> bool {
    let mut wildcard = None;
    for item in header_value.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if name.eq_ignore_ascii_case(coding) {
            return !refused;
        }
        if name == "*" {
            wildcard = Some(!refused);
        }
    }
    wildcard.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    static SCRIPT: Asset = Asset {
        path: "app-0123456789abcdef.js",
        content_type: "text/javascript; charset=utf-8",
        etag: "abc123",
        immutable: true,
        identity: b"console.log('plain')",
        gzip: Some(b"gzip bytes"),
        brotli: Some(b"brotli bytes"),
        script_hashes: &[],
    };

    fn request(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn the_best_accepted_encoding_is_served() {
        let r = respond(
            &SCRIPT,
            &request(&[(header::ACCEPT_ENCODING, "gzip, deflate, br")]),
        );
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(r.headers()[header::ETAG], "\"abc123-br\"");
        assert_eq!(body(r).await, b"brotli bytes");

        let r = respond(
            &SCRIPT,
            &request(&[(header::ACCEPT_ENCODING, "gzip;q=0.8, br;q=0")]),
        );
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(body(r).await, b"gzip bytes");

        let r = respond(&SCRIPT, &request(&[]));
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(body(r).await, b"console.log('plain')");
    }

    #[test]
    fn fingerprinted_files_are_cached_for_good_others_revalidated() {
        let r = respond(&SCRIPT, &request(&[]));
        assert_eq!(r.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(r.headers()[header::VARY], "accept-encoding");
        let page = Asset {
            immutable: false,
            ..SCRIPT
        };
        assert_eq!(
            respond(&page, &request(&[])).headers()[header::CACHE_CONTROL],
            REVALIDATE
        );
    }

    #[tokio::test]
    async fn a_matching_etag_gets_not_modified_without_body() {
        let r = respond(
            &SCRIPT,
            &request(&[
                (header::ACCEPT_ENCODING, "br"),
                (header::IF_NONE_MATCH, "\"x\", \"abc123-br\""),
            ]),
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(body(r).await.is_empty());
        // The same tag for another encoding is another representation: full answer.
        let r = respond(
            &SCRIPT,
            &request(&[(header::IF_NONE_MATCH, "\"abc123-br\"")]),
        );
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn accept_encoding_parsing() {
        assert!(accepts("br", "br"));
        assert!(accepts("gzip, BR", "br"));
        assert!(!accepts("gzip", "br"));
        assert!(!accepts("br;q=0", "br"));
        assert!(!accepts("br; q=0.0", "br"));
        assert!(accepts("*", "br"));
        assert!(!accepts("*, br;q=0", "br"));
        assert!(!accepts("", "gzip"));
    }
}
