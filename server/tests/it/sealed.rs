//! What a customer would try against the program they are given: self-issued licenses, run-time
//! keys, the vendor's tools. The tests of a sealed build need that build: `make sealed-test`
//! makes one (`make vendor-build` with a fresh vendor key) and runs them with `--ignored`, passing
//! the binary in `LICENSE_SERVER_SEALED_BIN` and the vendor's private key in
//! `LICENSE_SERVER_SEALED_KEY`.

use std::path::Path;

use crate::binary::{ServerProcess, command_of, finish, run, run_vendor, start_server_of, stderr};

#[tokio::test]
async fn the_customer_binary_has_no_vendor_tools() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    for args in [
        &["vendor", "keygen", "--out-dir", out_dir][..],
        &["keygen", "--out-dir", out_dir],
        &["vendor", "issue", "--key", "k", "--server-id", "AB"],
    ] {
        let out = run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("unrecognized subcommand"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let help = String::from_utf8(run(&["--help"]).await.stdout).unwrap();
    assert!(!help.contains("vendor"), "{help}");
    // They live in the vendor's program.
    let out = run_vendor(&["keygen", "--out-dir", out_dir]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("vendor.key").exists());
}

#[tokio::test]
async fn a_development_build_says_so_in_its_version_and_its_log() {
    let out = run(&["--version"]).await;
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(
        version.contains("development build: trusts vendor keys given at run time"),
        "{version}"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = crate::binary::start_server(dir.path(), &[]).await;
    assert!(
        warns_of_a_development_build(&server),
        "{:?}",
        server.startup_log
    );
    assert!(server.terminate().await);
}

fn warns_of_a_development_build(server: &ServerProcess) -> bool {
    server.startup_log.iter().any(|e| {
        e["level"] == "WARN"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("development build"))
    })
}

fn sealed_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `make sealed-test`, which makes a sealed build first")
    })
}

#[tokio::test]
#[ignore = "needs a sealed build: make sealed-test"]
async fn a_sealed_build_trusts_only_its_compiled_in_keys() {
    let binary = sealed_env("LICENSE_SERVER_SEALED_BIN");
    let vendor_key = sealed_env("LICENSE_SERVER_SEALED_KEY");
    let sealed = |args: &[&str]| finish(command_of(&binary, args));

    let version = String::from_utf8(sealed(&["--version"]).await.stdout).unwrap();
    assert!(
        version.contains("sealed build: trusts vendor keys"),
        "{version}"
    );

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().unwrap();
    let out = sealed(&["server-id", "--data-dir", data]).await;
    let server_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // The development builds' switch to pretend to be another machine is refused.
    let simulated = finish({
        let mut c = command_of(&binary, &["server-id", "--data-dir", data]);
        c.env("LICENSE_SERVER_DEV_SIMULATE_HOST", "elsewhere");
        c
    })
    .await;
    assert_eq!(simulated.status.code(), Some(1));
    assert!(
        stderr(&simulated).contains("only development builds can pretend"),
        "{}",
        stderr(&simulated)
    );

    // The customer makes a key of their own and gives themselves 9,999 seats.
    let mine = dir.path().join("mine");
    let out = run_vendor(&["keygen", "--out-dir", mine.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let issue = async |key: &Path, file: &Path, spec: &str| {
        let out = run_vendor(&[
            "issue",
            "--key",
            key.to_str().unwrap(),
            "--server-id",
            &server_id,
            "--product-spec",
            spec,
            "--out",
            file.to_str().unwrap(),
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let forged = dir.path().join("forged.lic");
    issue(&mine.join("vendor.key"), &forged, "7:0:Tool:9999:0").await;
    let my_pub = mine.join("vendor.pub");
    for attempt in [
        sealed(&[
            "serve",
            "--data-dir",
            data,
            "--vendor-public-key",
            my_pub.to_str().unwrap(),
        ])
        .await,
        finish({
            let mut c = command_of(&binary, &["serve", "--data-dir", data]);
            c.env("LICENSE_SERVER_VENDOR_PUBLIC_KEY", &my_pub);
            c
        })
        .await,
        sealed(&[
            "license",
            "install",
            forged.to_str().unwrap(),
            "--data-dir",
            data,
            "--vendor-public-key",
            my_pub.to_str().unwrap(),
        ])
        .await,
    ] {
        assert_eq!(attempt.status.code(), Some(1));
        assert!(
            stderr(&attempt).contains("this is a sealed build")
                && stderr(&attempt).contains("--vendor-public-key"),
            "{}",
            stderr(&attempt)
        );
    }
    let out = sealed(&[
        "license",
        "install",
        forged.to_str().unwrap(),
        "--data-dir",
        data,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("LICENSE_UNTRUSTED_KEY"),
        "{}",
        stderr(&out)
    );

    // The vendor's own license installs; the forged one, copied in by hand, is skipped.
    let real = dir.path().join("real.lic");
    issue(Path::new(&vendor_key), &real, "7:0:Tool:3:0").await;
    let out = sealed(&[
        "license",
        "install",
        real.to_str().unwrap(),
        "--data-dir",
        data,
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::copy(&forged, data_dir.join("licenses/forged.lic")).unwrap();
    let server = start_server_of(&binary, &data_dir, &[]).await;
    let status = server.data().await;
    assert_eq!(status["servers"][0]["build"], "sealed");
    assert_eq!(status["cartridges"][0]["runcount"], 3, "{status}");
    assert!(
        !warns_of_a_development_build(&server),
        "{:?}",
        server.startup_log
    );
    assert!(server.terminate().await);
}
