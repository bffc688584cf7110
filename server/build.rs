//! Embeds the web UI that trunk built (`app/dist/`: the status page's bundle in `status/`, the
//! admin screens' in `admin/`) into the server binary, so that one file runs anywhere.
//!
//! Every file is compressed here, once, with gzip and brotli at their best settings; the server then
//! answers from memory without compressing anything per request. The script also computes the
//! SHA-256 of each inline `<script>` of each `index.html`, so each page's Content-Security-Policy can
//! allow exactly those scripts and nothing else.
//!
//! Without a built UI (a plain `cargo build` or `cargo test` on a fresh checkout) the server still
//! builds; it then answers the status page with a notice saying how to build the UI.
//!
//! It also seals the build: `LICENSE_SERVER_VENDOR_KEYS` (comma-separated PEM public key files,
//! relative paths from the repository root) compiles the vendor's keys into the binary, which then
//! trusts those and no others (see `licensing::sealed`). Each key is checked here, so a typo fails
//! the build instead of shipping a server that accepts nothing.

use std::{
    env,
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use sha2::{Digest, Sha256};

fn main() {
    println!("cargo:rerun-if-env-changed=LICENSE_SERVER_UI_DIST");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    seal(&manifest_dir);
    let dist = env::var_os("LICENSE_SERVER_UI_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../app/dist"));
    // Cargo scans a directory recursively for changes; a missing one makes the script rerun on
    // every build, which is cheap when there is nothing to embed.
    println!("cargo:rerun-if-changed={}", dist.display());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let blobs = out_dir.join("ui");
    if blobs.exists() {
        fs::remove_dir_all(&blobs).expect("remove old embedded UI");
    }
    fs::create_dir_all(&blobs).expect("create OUT_DIR/ui");

    let mut files = Vec::new();
    if dist.join("status/index.html").is_file() && dist.join("admin/index.html").is_file() {
        collect(&dist, &dist, &mut files);
        files.sort();
    } else if env::var("PROFILE").as_deref() == Ok("release") {
        println!(
            "cargo:warning=no web UI at {} (run `make build`): this binary will serve a notice \
             instead of the status page",
            dist.display()
        );
    }

    let mut code = String::new();
    writeln!(code, "pub(crate) static ASSETS: &[Asset] = &[").expect("write to string");
    for (i, relative) in files.iter().enumerate() {
        let content = fs::read(dist.join(relative)).expect("read UI file");
        let script_hashes = if relative.ends_with("index.html") {
            inline_script_hashes(&String::from_utf8_lossy(&content))
        } else {
            Vec::new()
        };
        let raw = blobs.join(format!("{i}"));
        fs::write(&raw, &content).expect("write embedded file");
        let gzip = keep_if_smaller(&content, gzip(&content), &blobs.join(format!("{i}.gz")));
        let brotli = keep_if_smaller(&content, brotli(&content), &blobs.join(format!("{i}.br")));
        let digest = Sha256::digest(&content);
        let etag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        writeln!(
            code,
            "    Asset {{ path: {relative:?}, content_type: {:?}, etag: {etag:?}, immutable: {}, \
             identity: include_bytes!({:?}), gzip: {}, brotli: {}, script_hashes: &{script_hashes:?} }},",
            content_type(relative),
            is_content_hashed(relative),
            raw.display().to_string(),
            include_option(gzip),
            include_option(brotli),
        )
        .expect("write to string");
    }
    writeln!(code, "];").expect("write to string");
    fs::write(out_dir.join("assets.rs"), code).expect("write assets.rs");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read UI dist dir") {
        let path = entry.expect("read UI dist entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("inside the dist dir");
            files.push(
                relative
                    .to_str()
                    .expect("UTF-8 file names")
                    .replace('\\', "/"),
            );
        }
    }
}

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(content).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn brotli(content: &[u8]) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        size_hint: content.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &content[..], &mut out, &params).expect("brotli in memory");
    out
}

/// Compressed variants that save less than a tenth (images, fonts) are not worth a decode.
fn keep_if_smaller(content: &[u8], compressed: Vec<u8>, path: &Path) -> Option<PathBuf> {
    if compressed.len() * 10 >= content.len() * 9 {
        return None;
    }
    fs::write(path, compressed).expect("write compressed file");
    Some(path.to_owned())
}

fn include_option(path: Option<PathBuf>) -> String {
    match path {
        Some(path) => format!("Some(include_bytes!({:?}))", path.display().to_string()),
        None => "None".to_owned(),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Trunk names what it fingerprints `name-<hash>` (`app-0123456789abcdef_bg.wasm`): such a file
/// never changes under its name, so browsers may cache it forever. The hash is a 64-bit value
/// written in hex *without* leading zeros, so one build in sixteen has 15 digits or fewer.
fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split('-').skip(1).any(|part| {
        let hex: String = part.chars().take_while(char::is_ascii_hexdigit).collect();
        let rest = &part[hex.len()..];
        (1..=16).contains(&hex.len()) && (rest.starts_with('.') || rest.starts_with('_'))
    })
}

/// `'sha256-…'` sources for each inline script (trunk's loader) in the page, for its CSP.
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let open_tag = &rest[..open_end];
        let Some(close) = rest.find("</script>") else {
            break;
        };
        if !open_tag.contains(" src=") {
            let body = &rest[open_end + 1..close];
            let digest = Sha256::digest(body.as_bytes());
            hashes.push(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        rest = &rest[close + "</script>".len()..];
    }
    hashes
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Writes `OUT_DIR/sealed.rs`: the compiled-in vendor keys (none: a development build) and the
/// line `--version` prints.
fn seal(manifest_dir: &Path) {
    println!("cargo:rerun-if-env-changed=LICENSE_SERVER_VENDOR_KEYS");
    let root = manifest_dir.parent().unwrap_or(manifest_dir);
    let list = env::var("LICENSE_SERVER_VENDOR_KEYS").unwrap_or_default();
    let mut pems = Vec::new();
    let mut ids = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let path = root.join(item);
        println!("cargo:rerun-if-changed={}", path.display());
        let pem = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "LICENSE_SERVER_VENDOR_KEYS: cannot read {}: {e}",
                path.display()
            )
        });
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .unwrap_or_default();
        let Some(raw) = der
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .filter(|r| r.len() == 32)
        else {
            panic!(
                "LICENSE_SERVER_VENDOR_KEYS: {} is not an Ed25519 public key in PEM (the \
                 vendor.pub that `license-vendor keygen` writes)",
                path.display()
            );
        };
        let digest = Sha256::digest(raw);
        let id: String = digest[..8].iter().map(|b| format!("{b:02X}")).collect();
        if !ids.contains(&id) {
            ids.push(id);
            pems.push(pem);
        }
    }
    let version = env::var("CARGO_PKG_VERSION").expect("set by cargo");
    let line = if ids.is_empty() {
        format!("{version} (development build: trusts vendor keys given at run time)")
    } else {
        format!(
            "{version} (sealed build: trusts vendor keys {})",
            ids.join(", ")
        )
    };
    let code = format!(
        "pub(crate) static SEALED_KEYS: &[&str] = &{pems:?};\n\
         pub(crate) static SEALED_KEY_IDS: &[&str] = &{ids:?};\n\
         pub(crate) static VERSION_LINE: &str = {line:?};\n"
    );
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out_dir.join("sealed.rs"), code).expect("write sealed.rs");
}
