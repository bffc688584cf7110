//! The status page's own views: paged sessions and the cartridges' history, against a whole
//! server.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use server::EngineConfig;

use crate::protocol::{Lab, Lic};

/// Sessions that outlive the test without heartbeats.
fn patient() -> EngineConfig {
    EngineConfig {
        timeout: std::time::Duration::from_secs(600),
        ..EngineConfig::default()
    }
}

impl Lab {
    async fn status_get(&self, path: &str, pool: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("http://{}{path}", self.running().api_addr))
            .header("X-Pool-ID", pool)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn open_on(&self, host: &str, message: &str) -> u64 {
        let (status, answer) = self
            .send(
                reqwest::Method::POST,
                "/v1/sessions",
                Some(json!({"host": host, "message": message})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["session_id"].as_u64().unwrap()
    }
}

fn ids(page: &Value) -> Vec<u64> {
    page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn sessions_are_paged_sorted_and_filtered_by_the_server() {
    let lab = Lab::start(
        &[
            Lic(1, None, &["7:0:Toolbox:10:0"]),
            Lic(2, Some("farm"), &["7:0:Toolbox:1:0"]),
        ],
        patient(),
    )
    .await;
    let mut opened = Vec::new();
    for i in 0..12 {
        let id = lab
            .open_on(
                &format!("render-{i:02}"),
                if i == 5 { "nightly" } else { "job" },
            )
            .await;
        opened.push(id);
    }
    // Three hold a license, two ended.
    for &id in &opened[..3] {
        lab.grant(id, "r", 7, 0, "all").await;
    }
    lab.close(opened[10]).await;
    lab.close(opened[11]).await;

    let (status, first) = lab.status_get("/status/sessions.json?limit=5", "").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["total"], 12);
    assert_eq!(first["matched"], 12);
    let newest_first: Vec<u64> = opened.iter().rev().take(5).copied().collect();
    assert_eq!(ids(&first), newest_first);
    let (_, third) = lab
        .status_get("/status/sessions.json?limit=5&offset=10", "")
        .await;
    assert_eq!(ids(&third), vec![opened[1], opened[0]]);

    let (_, by_host) = lab
        .status_get("/status/sessions.json?sort=host&order=asc&limit=2", "")
        .await;
    assert_eq!(ids(&by_host), vec![opened[0], opened[1]]);

    let (_, running_with_toolbox) = lab
        .status_get("/status/sessions.json?status=running&product=toolbox", "")
        .await;
    assert_eq!(running_with_toolbox["matched"], 3);
    assert_eq!(
        running_with_toolbox["sessions"][0]["licenses"][0]["product"],
        "Toolbox"
    );
    let (_, finished) = lab
        .status_get("/status/sessions.json?status=finished", "")
        .await;
    assert_eq!(ids(&finished), vec![opened[11], opened[10]]);
    let (_, text) = lab.status_get("/status/sessions.json?q=NIGHTLY", "").await;
    assert_eq!(ids(&text), vec![opened[5]]);
    let (_, host) = lab
        .status_get("/status/sessions.json?host=render-0", "")
        .await;
    assert_eq!(host["matched"], 10);

    // Another pool's page has none of these.
    let (_, farm) = lab.status_get("/status/sessions.json", "farm").await;
    assert_eq!(farm["total"], 0);

    for bad in [
        "limit=0",
        "limit=501",
        "sort=price",
        "status=asleep",
        "offset=-1",
        "colour=red",
    ] {
        let (status, answer) = lab
            .status_get(&format!("/status/sessions.json?{bad}"), "")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert_eq!(answer["error"]["code"], "INVALID_QUERY", "{bad}");
    }

    // data.json stays whole for scripts; the page asks for it without sessions.
    let (_, whole) = lab.status_get("/status/data.json", "").await;
    assert_eq!(whole["sessions"].as_array().unwrap().len(), 12);
    let (_, light) = lab.status_get("/status/data.json?sessions=false", "").await;
    assert_eq!(light["sessions"], json!([]));
    assert_eq!(light["cartridges"], whole["cartridges"]);
    lab.stop().await;
}

#[tokio::test]
async fn the_history_ends_with_the_live_counters_of_each_cartridge_and_keeps_a_day_by_the_hour() {
    let mut lab = Lab::start(
        &[Lic(1, None, &["7:0:Toolbox:4:0", "8:2:Meter:0:1000"])],
        patient(),
    )
    .await;
    let session = lab.open(None).await;
    lab.grant(session, "a", 7, 0, "all").await;
    lab.grant(session, "b", 7, 0, "all").await;
    let (credit, _, _) = lab.grant(session, "c", 8, 2, "all").await;
    lab.release(session, credit).await;

    let (status, history) = lab.status_get("/status/history.json", "").await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["interval_s"], 10);
    assert_eq!(history["span_s"], 3600);
    let series = |product: u64| series_of(&history, product);
    let toolbox = series(7);
    assert_eq!(toolbox.last().unwrap()["runcount_in_use"], 2);
    let meter = series(8);
    assert!(meter.last().unwrap()["used_credits"].as_i64().unwrap() >= 1);
    let (_, farm) = lab.status_get("/status/history.json", "farm").await;
    assert_eq!(farm["cartridges"], json!([]));

    // The last 24 hours by the hour, from the ledger: the hour under way last.
    let hours_from = time::OffsetDateTime::parse(
        history["hours_from"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(hours_from.unix_timestamp() % 3600, 0);
    assert!(
        now - hours_from < time::Duration::hours(24)
            && now - hours_from >= time::Duration::hours(23)
    );
    let hourly = |history: &Value, product: u64, series: &str| -> Vec<u64> {
        history["cartridges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["product_id"] == product)
            .unwrap()[series]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    // The fold follows the engine within seconds; then the debit is in its hour.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let history = loop {
        let (_, history) = lab.status_get("/status/history.json", "").await;
        if hourly(&history, 8, "credits").iter().sum::<u64>() >= 1 {
            break history;
        }
        assert!(tokio::time::Instant::now() < deadline, "{history}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let peaks = hourly(&history, 7, "peak");
    assert_eq!(peaks.len(), 24);
    assert_eq!(peaks.iter().max(), Some(&2), "{peaks:?}");
    assert_eq!(
        peaks[..22].iter().sum::<u64>(),
        0,
        "nothing before: {peaks:?}"
    );

    // After a restart the samples start again; the hours come back from the ledger.
    lab.restart().await;
    let (_, after) = lab.status_get("/status/history.json", "").await;
    assert!(series_of(&after, 7).len() <= 2, "{after}");
    assert_eq!(hourly(&after, 7, "peak").iter().max(), Some(&2), "{after}");
    assert_eq!(
        hourly(&after, 8, "credits").iter().sum::<u64>(),
        hourly(&history, 8, "credits").iter().sum::<u64>()
    );
    lab.stop().await;
}

fn series_of(history: &Value, product: u64) -> Vec<Value> {
    history["cartridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["product_id"] == product)
        .unwrap()["samples"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_ended_session_keeps_its_products_user_and_end_through_a_restart() {
    let mut lab = Lab::start(&[Lic(1, None, &["7:0:Toolbox:10:0"])], patient()).await;
    let alice = lab.open_for("ci-1", "alice").await;
    let (first, _, _) = lab.grant(alice, "a", 7, 0, "all").await;
    lab.release(alice, first).await;
    lab.grant(alice, "b", 7, 0, "all").await;
    lab.close(alice).await;
    let ended = |page: &Value| page["sessions"][0].clone();
    let (_, page) = lab
        .status_get("/status/sessions.json?status=finished", "")
        .await;
    let session = ended(&page);
    assert_eq!(session["licenses"], json!([]), "it holds nothing now");
    assert_eq!(
        session["granted"],
        json!([{"product_id": 7, "major_version": 0, "product": "Toolbox", "type": "runcount"}]),
        "what it used, once however often: {session}"
    );
    assert_eq!(
        session["user"],
        json!({"realm": "corp", "principal": "alice"})
    );
    let (started, end) = (
        session["started"].as_str().unwrap(),
        session["ended"].as_str().unwrap(),
    );
    assert!(end >= started, "{started} {end}");
    // What the table shows is what is searched: its user and the product it used.
    for q in ["ALICE", "toolbox"] {
        let (_, found) = lab
            .status_get(&format!("/status/sessions.json?q={q}"), "")
            .await;
        assert_eq!(ids(&found), vec![alice], "{q}");
    }
    // The stop writes a snapshot, which the start loads: the same session comes back.
    lab.restart().await;
    let (_, page) = lab
        .status_get("/status/sessions.json?status=finished", "")
        .await;
    assert_eq!(ended(&page), session);
    lab.stop().await;
}
