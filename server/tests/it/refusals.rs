//! Why a license or a session was refused: in the ledger, its CSV export and the cartridge
//! statistics.

use reqwest::StatusCode;

use crate::{
    binary::{run, stderr},
    protocol::{Lab, Lic, quick},
};

/// The CSV export (read while the server runs): the `columns` of the rows of `kinds`.
async fn exported(lab: &Lab, kinds: &[&str], columns: &[&str]) -> Vec<Vec<String>> {
    let data_dir = lab.dir.path().to_str().unwrap().to_owned();
    let export = run(&["ledger", "export", "--data-dir", &data_dir]).await;
    assert!(export.status.success(), "{}", stderr(&export));
    let csv = String::from_utf8(export.stdout).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| kinds.contains(&f[column("kind")]))
        .map(|f| columns.iter().map(|c| f[column(c)].to_owned()).collect())
        .collect()
}

#[tokio::test]
async fn every_refusal_says_why_in_the_export_and_the_cartridge_statistics() {
    let lab = Lab::start(
        &[
            Lic(
                1,
                None,
                &["7:0:Seat:1:0", "8:0:Prepaid:0:1", "6:2:Versioned:1:0"],
            ),
            Lic(2, Some("farm"), &["5:0:FarmOnly:1:0"]),
        ],
        quick(),
    )
    .await;
    let s = lab.open(None).await;
    lab.grant(s, "seat", 7, 0, "all").await;
    let (credit, _, _) = lab.grant(s, "credit", 8, 0, "credits").await;
    lab.release(s, credit).await;

    let refusals: [(&str, u32, u32, &str, u64); 6] = [
        ("no-seat", 7, 0, "all", 0),
        ("waited", 7, 0, "all", 1),
        ("unknown", 4, 0, "all", 0),
        ("other-pool", 5, 0, "all", 0),
        ("old-version", 6, 3, "all", 0),
        ("no-credits", 8, 0, "credits", 0),
    ];
    for (request_id, product, major, kind, wait_s) in refusals {
        let (status, answer) = lab
            .request(s, request_id, product, major, kind, wait_s)
            .await;
        assert!(
            status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND,
            "{request_id}: {status} {answer}"
        );
    }
    let seat = lab.cartridge("", 7, 0).await["statistic"]["licenses"].clone();
    assert_eq!(seat["failed"], 2, "{seat}");
    assert_eq!(seat["failed_by_reason"]["no_seat_free"], 1, "{seat}");
    assert_eq!(seat["failed_by_reason"]["waited_out"], 1, "{seat}");
    let prepaid = lab.cartridge("", 8, 0).await["statistic"]["licenses"].clone();
    assert_eq!(
        prepaid["failed_by_reason"]["credits_exhausted"], 1,
        "{prepaid}"
    );
    let reasons: Vec<(String, String)> =
        exported(&lab, &["license_refused"], &["product_id", "reason"])
            .await
            .into_iter()
            .map(|f| (f[0].clone(), f[1].clone()))
            .collect();
    let expected = [
        ("7", "no_seat_free"),
        ("7", "waited_out"),
        ("4", "unknown_product"),
        ("5", "wrong_pool"),
        ("6", "no_version"),
        ("8", "credits_exhausted"),
    ];
    assert_eq!(reasons, expected.map(|(p, r)| (p.to_owned(), r.to_owned())));
    lab.stop().await;
}

#[tokio::test]
async fn a_session_refused_for_the_user_limit_is_in_the_ledger_with_its_user() {
    let lab = Lab::start_full(&[Lic(1, None, &["7:0:Seat:2:0"])], quick(), Some(1)).await;
    let open = |principal: &str| {
        serde_json::json!({
            "host": "render-3",
            "message": "job",
            "user": {"realm": "corp", "principal": principal},
        })
    };
    let (status, answer) = lab
        .send(reqwest::Method::POST, "/v1/sessions", Some(open("ann")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = lab
        .send(reqwest::Method::POST, "/v1/sessions", Some(open("bob")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "LICENSE_USER_LIMIT");

    let sessions = exported(
        &lab,
        &["session_opened", "session_refused"],
        &["kind", "host", "principal", "reason"],
    )
    .await;
    let row = |kind: &str, principal: &str, reason: &str| {
        [kind, "render-3", principal, reason]
            .map(str::to_owned)
            .to_vec()
    };
    assert_eq!(
        sessions,
        [
            row("session_opened", "ann", ""),
            row("session_refused", "bob", "user_limit")
        ]
    );
    let realm = exported(&lab, &["session_refused"], &["realm"]).await;
    assert_eq!(realm, [["corp".to_owned()]]);
    lab.stop().await;
}
