//! `GET /server/manage/usage`: the usage report folded from the ledger: grants, peaks, refusals
//! by reason, credits, the busiest hosts and users, per host; the same after a restart and after
//! the totals are thrown away and rebuilt from the ledger; bad input refused; VIEW required.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::protocol::{Lab, Lic, quick};

impl Lab {
    /// Opens a session on `host` for `principal` of realm `corp` (none if empty).
    pub(crate) async fn open_for(&self, host: &str, principal: &str) -> u64 {
        let mut body = json!({"host": host, "message": "build"});
        if !principal.is_empty() {
            body["user"] = json!({"realm": "corp", "principal": principal});
        }
        let (status, answer) = self.send(Method::POST, "/v1/sessions", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["session_id"].as_u64().unwrap()
    }

    async fn usage(&self, token: &str, query: &str) -> Value {
        let (status, body, _) = self
            .admin(
                Method::GET,
                &format!("/server/manage/usage{query}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn cartridge(report: &Value, product: u64) -> &Value {
    report["cartridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["product_id"] == product)
        .unwrap_or_else(|| panic!("no product {product} in {report}"))
}

/// What must survive a restart and a rebuild: everything but what grows with the clock (the
/// license time of licenses held now, the rate of credits per day).
fn lasting(report: &Value) -> Value {
    let mut report = report.clone();
    for c in report["cartridges"].as_array_mut().unwrap() {
        // The rate divides by the time elapsed, which has grown.
        for key in ["held_seconds", "credits_per_day", "days_left"] {
            c.as_object_mut().unwrap().remove(key);
        }
        c["series"].as_object_mut().unwrap().remove("held_seconds");
    }
    for list in ["hosts", "users"] {
        let parties = report[list].as_array_mut().unwrap();
        for p in parties.iter_mut() {
            p.as_object_mut().unwrap().remove("held_seconds");
        }
        // The busiest come first by license time, which grows for a license still held: the
        // order may change, the members and their counts may not.
        parties.sort_by_key(|p| p.to_string());
    }
    for key in ["from", "to", "buckets", "through"] {
        report.as_object_mut().unwrap().remove(key);
    }
    report
}

#[tokio::test]
async fn the_report_counts_grants_peaks_refusals_credits_hosts_and_users_and_is_rebuilt_from_the_ledger()
 {
    let mut lab = Lab::start(
        &[Lic(1, None, &["7:0:Seat:2:0", "8:0:Prepaid:0:100"])],
        quick(),
    )
    .await;
    let token = lab.admin_token().await;
    let alice = lab.open_for("ci-1", "alice").await;
    let bob = lab.open_for("ci-2", "bob").await;
    let anyone = lab.open_for("ci-3", "").await;
    let (first, _, _) = lab.grant(alice, "a", 7, 0, "all").await;
    lab.grant(bob, "b", 7, 0, "all").await;
    let (status, _) = lab.request(anyone, "c", 7, 0, "all", 0).await;
    assert_eq!(status, StatusCode::CONFLICT);
    lab.release(alice, first).await;
    let (credit, _, _) = lab.grant(alice, "d", 8, 0, "credits").await;
    let debited = lab.release(alice, credit).await;
    assert!(debited > 0);

    let report = lab.usage(&token, "").await;
    assert_eq!(report["step"], "hour", "{report}");
    assert_eq!(report["buckets"], 7 * 24 + 1);
    assert_eq!(report["complete"], true);
    let seat = cartridge(&report, 7);
    assert_eq!(seat["product"], "Seat");
    assert_eq!(seat["runcount"], 2);
    assert_eq!(seat["grants"], 2);
    assert_eq!(seat["peak"], 2, "both seats were held at once: {seat}");
    assert_eq!(seat["refusals"], 1);
    let peaks = seat["series"]["peak"].as_array().unwrap();
    assert_eq!(peaks.len(), 7 * 24 + 1);
    // The last hour holds the peak (or the one before, if an hour began since the grants).
    assert!(peaks.iter().rev().take(2).any(|p| p == 2), "{peaks:?}");
    let prepaid = cartridge(&report, 8);
    assert_eq!(prepaid["credits_used"], debited);
    assert_eq!(prepaid["credits_left"], 100 - debited);
    assert_eq!(
        prepaid["credits_per_day"],
        debited / 7,
        "a week's credits, per day"
    );
    // Since midnight: a day's worth at most, so at least what was debited, per day.
    let today = time::OffsetDateTime::now_utc().date();
    let since_midnight = lab.usage(&token, &format!("?from={today}")).await;
    let prepaid = cartridge(&since_midnight, 8);
    let per_day = prepaid["credits_per_day"].as_u64().unwrap();
    assert!(per_day >= debited, "{prepaid}");
    assert_eq!(prepaid["days_left"], (100 - debited) / per_day);
    assert_eq!(
        report["refusals"],
        json!([{"reason": "no_seat_free", "refusals": 1}])
    );
    let hosts: Vec<&str> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(report["hosts_total"], 2, "ci-3 was refused, never granted");
    assert!(
        hosts.contains(&"ci-1") && hosts.contains(&"ci-2"),
        "{hosts:?}"
    );
    let alice_row = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"]["principal"] == "alice")
        .unwrap();
    assert_eq!(alice_row["grants"], 2);
    assert_eq!(alice_row["credits_used"], debited);

    // One host: by the day, without peaks (which only the hourly totals know).
    let ci2 = lab.usage(&token, "?host=ci-2&from=2026-01-01").await;
    assert_eq!(ci2["step"], "day");
    let seat = cartridge(&ci2, 7);
    assert_eq!(seat["grants"], 1);
    assert!(seat.get("peak").is_none(), "{seat}");
    assert_eq!(ci2["hosts"][0]["host"], "ci-2");
    assert_eq!(ci2["hosts_total"], 1);
    assert_eq!(
        ci2["users"],
        json!([]),
        "hosts and users are totalled apart"
    );
    let bob = lab.usage(&token, "?realm=corp&principal=bob").await;
    assert_eq!(cartridge(&bob, 7)["grants"], 1);
    assert_eq!(bob["users"][0]["user"]["principal"], "bob");
    assert_eq!(bob["hosts"], json!([]));
    // Another pool: nothing.
    let empty = lab.usage(&token, "?pool=farm").await;
    assert_eq!(empty["cartridges"], json!([]));
    // A range before any of it, while bob still holds his license: nothing either.
    let past = lab.usage(&token, "?from=2025-01-01&to=2025-01-08").await;
    assert_eq!(past["cartridges"], json!([]), "{past}");
    assert_eq!(past["buckets"], 7 * 24, "a week is by the hour");

    // The same after a restart, and after the totals are thrown away: folded again from the
    // ledger. Over a range of fixed days, so that an hour that begins meanwhile moves nothing.
    let today = time::OffsetDateTime::now_utc().date();
    let fixed = format!(
        "?from={}&to={}&step=hour",
        today - time::Duration::days(7),
        today.next_day().unwrap()
    );
    let report = lab.usage(&token, &fixed).await;
    assert_eq!(cartridge(&report, 7)["peak"], 2);
    // Bob's session times out meanwhile (2 s without a heartbeat): his license time grows.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    lab.restart().await;
    let token = lab.admin_token().await;
    assert_eq!(lasting(&lab.usage(&token, &fixed).await), lasting(&report));
    lab.halt().await;
    let db = lab.dir.path().join("license-server.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for table in [
        "usage_cursor",
        "usage_hours",
        "usage_host_days",
        "usage_user_days",
        "usage_refusals",
        "usage_sessions",
        "usage_held",
    ] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    lab.restart().await;
    let token = lab.admin_token().await;
    assert_eq!(lasting(&lab.usage(&token, &fixed).await), lasting(&report));
    lab.stop().await;
}

#[tokio::test]
async fn bad_queries_are_refused_and_the_report_needs_a_login() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:Seat:2:0"])], quick()).await;
    let token = lab.admin_token().await;
    for (query, words) in [
        ("?from=2026-12-01&to=2026-11-01", "after"),
        ("?from=2025-01-01&to=2026-12-01", "400 days"),
        ("?from=2026-01-01&to=2026-06-01&step=hour", "step=day"),
        ("?host=ci-1&step=hour", "by the day"),
        ("?host=ci-1&principal=alice", "not both"),
        ("?utc_offset=900", "-840"),
        ("?from=yesterday", "RFC 3339"),
        ("?colour=blue", "colour"),
    ] {
        let (status, body, _) = lab
            .admin(
                Method::GET,
                &format!("/server/manage/usage{query}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_QUERY", "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{query}: {message}");
    }
    let (status, body, _) = lab
        .admin(Method::GET, "/server/manage/usage", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    lab.stop().await;
}
