//! TLS with a test CA: the API port and the license port over https (curl and the server's own
//! client), a certificate replaced on disk and on SIGHUP, a bad renewal that keeps the working
//! certificate, bad certificates refused at start with the cause, and the vendor service over
//! https with `--vendor-ca`.

use std::{path::Path, process::Command as StdCommand, time::Duration};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use reqwest::StatusCode;
use server::TlsFiles;

use crate::{
    binary::{run, start_server, stderr},
    protocol::Lab,
    vendor::vendor_for,
};

/// A certificate authority of its own, for the tests.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A server certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
    fn issue(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(&self, dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }
}

/// A client that trusts `ca` only, with a new connection (and handshake) for every request.
fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .pool_max_idle_per_host(0)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// `curl --cacert CA URL`: its output, or `None` where curl is missing (outside CI).
fn curl(ca: &Path, url: &str) -> Option<(bool, String)> {
    let output = StdCommand::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg(url)
        .output();
    match output {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(std::env::var_os("CI").is_none(), "curl is missing");
            None
        }
        Err(e) => panic!("cannot run curl: {e}"),
    }
}

/// Waits (up to 10 s) until `client` gets an answer from `url`.
async fn until_trusted(client: &reqwest::Client, url: &str) {
    for _ in 0..100 {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never presented a certificate this client trusts");
}

#[tokio::test]
async fn both_ports_speak_tls_and_a_renewed_certificate_is_taken_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new("First test CA");
    let first_ca = first.write(dir.path(), "first-ca.pem");
    let (cert, key) = first.issue();
    let cert_file = dir.path().join("server.crt");
    let key_file = dir.path().join("server.key");
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let server = start_server(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
            "--tls-license-port",
        ],
    )
    .await;
    let api = format!("https://{}", server.api_addr);
    let trusting_first = client(&first.cert.pem());
    for base in [&api, &format!("https://{}", server.license_addr)] {
        let health: serde_json::Value = trusting_first
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
    }
    if let Some((ok, said)) = curl(&first_ca, &format!("{api}/status/data.json")) {
        assert!(ok, "{said}");
        assert!(said.contains("\"cartridges\""), "{said}");
    }
    // Plain HTTP gets nothing from a TLS port; a client that does not trust the CA neither.
    assert!(
        reqwest::get(format!("http://{}/health", server.api_addr))
            .await
            .and_then(|r| r.error_for_status())
            .is_err()
    );
    let second = TestCa::new("Second test CA");
    let trusting_second = client(&second.cert.pem());
    assert!(
        trusting_second
            .get(format!("{api}/health"))
            .send()
            .await
            .is_err()
    );

    // The license client over https: `client run --server https://... --tls-ca`.
    let output = run(&[
        "client",
        "run",
        "--server",
        &format!("https://{}", server.license_addr),
        "--tls-ca",
        first_ca.to_str().unwrap(),
        "--product-id",
        "7",
        "--major-version",
        "0",
        "--wait",
        "0",
        "--",
        "true",
    ])
    .await;
    // No license is installed: the server answered over TLS that it has none.
    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("UNKNOWN_PRODUCT"),
        "{}",
        stderr(&output)
    );

    // Renewed on disk (by another CA, to tell them apart): taken within seconds, no restart.
    let (cert, key) = second.issue();
    std::fs::write(&key_file, &key).unwrap();
    std::fs::write(&cert_file, &cert).unwrap();
    until_trusted(&trusting_second, &format!("{api}/health")).await;
    assert!(
        trusting_first
            .get(format!("{api}/health"))
            .send()
            .await
            .is_err()
    );

    // A bad renewal (a key of another certificate) keeps the certificate in use, and says why.
    let (_, other_key) = second.issue();
    std::fs::write(&key_file, &other_key).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        trusting_second
            .get(format!("{api}/health"))
            .send()
            .await
            .is_ok()
    );
    let logged = server.log().lock().unwrap().join("\n");
    assert!(
        logged.contains("cannot reload the TLS certificate")
            && logged.contains("does not belong to the certificate"),
        "{logged}"
    );

    // SIGHUP reloads (and does not stop the server): back to the first CA's certificate.
    let (cert, key) = first.issue();
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let hup = StdCommand::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    until_trusted(&trusting_first, &format!("{api}/health")).await;
    let logged = server.log().lock().unwrap().join("\n");
    assert!(logged.contains("TLS certificate reloaded"), "{logged}");
    assert!(server.terminate().await);
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_the_start_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Test CA");
    let (cert, key) = ca.issue();
    let (_, other_key) = ca.issue();
    let files = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (cert, key, other_key, junk) = (
        files("cert.pem", &cert),
        files("key.pem", &key),
        files("other.pem", &other_key),
        files("junk.pem", "not a certificate\n"),
    );
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for (cert, key, cause) in [
        (&cert, &other_key, "does not belong to the certificate"),
        (&junk, &key, "holds no certificate"),
        (&cert, &junk, "holds no private key"),
        (&cert, &format!("{key}.missing"), "cannot read"),
    ] {
        let output = run(&[
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            data,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ])
        .await;
        assert!(!output.status.success(), "started with {cert} and {key}");
        assert!(
            stderr(&output).contains(cause),
            "{cause}: {}",
            stderr(&output)
        );
    }
    let output = run(&[
        "serve",
        "--port",
        "0",
        "--data-dir",
        data,
        "--tls-cert",
        &cert,
    ])
    .await;
    assert_eq!(output.status.code(), Some(2), "--tls-cert needs --tls-key");
}

#[tokio::test]
async fn the_vendor_service_over_https_is_reached_with_its_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Vendor test CA");
    let (cert, key) = ca.issue();
    let tls = TlsFiles {
        cert: dir.path().join("vendor.crt"),
        key: dir.path().join("vendor.key"),
    };
    std::fs::write(&tls.cert, cert).unwrap();
    std::fs::write(&tls.key, key).unwrap();
    let mut lab = Lab::start(&[], Default::default()).await;
    let vendor = vendor_for(&lab, Duration::from_secs(600), Some(tls)).await;
    assert!(vendor.url().starts_with("https://"));
    lab.vendor_url = Some(vendor.url());
    lab.restart().await;
    let admin = lab.first_admin_token().await;
    let (status, body) = lab
        .call(
            reqwest::Method::POST,
            "/server/manage/license/remote/auth",
            &admin,
            None,
            Some(serde_json::json!({"principal": "acme", "secret": "acme-secret-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "VENDOR_UNREACHABLE");
    let message = body["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("certificate"),
        "the cause is named: {message}"
    );

    lab.vendor_ca = Some(ca.write(dir.path(), "vendor-ca.pem"));
    lab.restart().await;
    let admin = lab.first_admin_token().await;
    assert!(!lab.vendor_login(&admin).await.is_empty());
    lab.stop().await;
}
