//! `GET /metrics` on a busy server: the figures agree with the status page's, the text passes
//! `promtool check metrics` (Debian's `prometheus` package; required under CI), the route label
//! is the pattern, and JSON answers come compressed to a client that asks.

use std::{collections::HashMap, sync::Arc, time::Duration};

use reqwest::StatusCode;

use crate::protocol::{Lab, Lic, quick};

pub async fn scrape(lab: &Lab) -> String {
    let response = lab
        .http
        .get(format!("http://{}/metrics", lab.running().api_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The samples of a scrape: the sample's name with its labels as written → its value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no sample {series} in {samples:#?}"))
}

/// `promtool ARGS` with `text` on its stdin: whether it succeeded and what it said; `None` where
/// promtool is not installed (outside CI).
fn promtool(args: &[&str], text: &str) -> Option<(bool, String)> {
    use std::io::Write as _;
    let child = std::process::Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is missing: apt-get install prometheus (make test does)"
            );
            eprintln!("promtool is not installed: the exposition is not linted");
            return None;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test]
async fn metrics_of_a_busy_server_agree_with_the_status_page_and_pass_promtool() {
    let lab = Arc::new(
        Lab::start(
            &[
                Lic(1, None, &["7:0:Seven:2:0", "8:0:Eight:0:100"]),
                Lic(2, Some("farm"), &["7:0:Seven:1:0"]),
            ],
            quick(),
        )
        .await,
    );
    // Two seats taken, a third request refused, a fourth waiting; a credit grant; a session
    // in the pool with its one seat.
    let a = lab.open(None).await;
    lab.grant(a, "a1", 7, 0, "runcount").await;
    lab.grant(a, "a2", 7, 0, "runcount").await;
    let (status, _) = lab.request(a, "a3", 7, 0, "runcount", 0).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (credit, _, _) = lab.grant(a, "c1", 8, 0, "credits").await;
    lab.release(a, credit).await;
    let farm = lab.open(Some("farm")).await;
    lab.grant(farm, "f1", 7, 0, "runcount").await;
    let waiter = lab.open(None).await;
    let waiting = {
        let lab = lab.clone();
        tokio::spawn(async move { lab.request(waiter, "w", 7, 0, "runcount", 30).await })
    };
    // Busy: many requests on both ports while the scrape happens.
    let mut load = Vec::new();
    for i in 0..8 {
        let lab = lab.clone();
        load.push(tokio::spawn(async move {
            for j in 0..20 {
                let _ = lab
                    .request(a, &format!("busy-{i}-{j}"), 7, 0, "runcount", 0)
                    .await;
                let _ = lab.data("").await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = scrape(&lab).await;
    for task in load {
        task.await.unwrap();
    }
    let s = samples(&text);
    let seven = r#"{pool="",product_id="7",major_version="0",product="Seven"}"#;
    let farm_seven = r#"{pool="farm",product_id="7",major_version="0",product="Seven"}"#;
    let eight = r#"{pool="",product_id="8",major_version="0",product="Eight"}"#;
    assert_eq!(
        value(&s, &format!("license_server_cartridge_seats{seven}")),
        2.0
    );
    assert_eq!(
        value(&s, &format!("license_server_cartridge_seats_in_use{seven}")),
        2.0
    );
    assert_eq!(
        value(
            &s,
            &format!("license_server_cartridge_seats_in_use{farm_seven}")
        ),
        1.0
    );
    assert_eq!(
        value(&s, &format!("license_server_cartridge_credits{eight}")),
        100.0
    );
    let cartridge = lab.cartridge("", 8, 0).await;
    assert_eq!(
        value(
            &s,
            &format!("license_server_cartridge_credits_remaining{eight}")
        ),
        cartridge["statistic"]["remaining_credits"]
            .as_f64()
            .unwrap()
    );
    let runcount = r#"{pool="",product_id="7",major_version="0",product="Seven",kind="runcount"}"#;
    assert_eq!(
        value(
            &s,
            &format!("license_server_cartridge_grants_total{runcount}")
        ),
        2.0
    );
    let no_seat =
        r#"{pool="",product_id="7",major_version="0",product="Seven",reason="no_seat_free"}"#;
    let refused = value(
        &s,
        &format!("license_server_cartridge_refusals_by_reason_total{no_seat}"),
    );
    assert!(refused >= 1.0, "{refused}");
    assert_eq!(
        value(
            &s,
            r#"license_server_waiting_requests{pool="",product_id="7",major_version="0"}"#
        ),
        1.0,
        "the waiter"
    );
    assert_eq!(
        value(&s, r#"license_server_sessions{status="running"}"#),
        3.0
    );
    assert_eq!(value(&s, "license_server_ready"), 1.0);
    assert!(value(&s, "license_server_ledger_commit_entries_count") >= 1.0);
    assert!(value(&s, "license_server_ledger_entries") >= 5.0);
    let grants_route = r#"license_server_http_requests_total{port="license",method="POST",route="/v1/sessions/{session_id}/licenses",code="2xx"}"#;
    assert!(value(&s, grants_route) >= 4.0, "{text}");
    assert!(
        text.contains(r#"license_server_http_request_duration_seconds_bucket{port="api",method="GET",route="/status/data.json",le="+Inf"}"#),
        "{text}"
    );
    if let Some((ok, said)) = promtool(&["check", "metrics"], &text) {
        assert!(ok, "promtool check metrics: {said}\n{text}");
    }

    // The waiter gets its seat when one is released; a scrape then shows no one waiting.
    lab.close(a).await;
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    let s = samples(&scrape(&lab).await);
    assert!(
        !s.keys()
            .any(|k| k.starts_with("license_server_waiting_requests{")),
        "nobody waits any more"
    );
    Arc::try_unwrap(lab).ok().unwrap().stop().await;
}

/// The README's example scrape configuration and alert rules are what Prometheus takes, and
/// every metric the rules name is one the server writes.
#[tokio::test]
async fn the_example_alert_rules_are_valid_and_name_only_metrics_that_exist() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prometheus");
    let config = examples.join("prometheus.yml");
    let rules = examples.join("license-server-alerts.yml");
    for (what, file) in [("config", &config), ("rules", &rules)] {
        if let Some((ok, said)) = promtool(&["check", what, file.to_str().unwrap()], "") {
            assert!(ok, "{said}");
        }
    }
    let lab = Lab::start(&[Lic(1, None, &["7:0:Seven:2:0"])], quick()).await;
    let text = scrape(&lab).await;
    lab.stop().await;
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    let named: std::collections::BTreeSet<&str> = rules_text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("license_server_"))
        .collect();
    assert!(named.len() >= 8, "{named:?}");
    // A failover network's families are written by its members only (the network tests read
    // them there).
    for metric in named
        .into_iter()
        .filter(|m| !m.starts_with("license_server_network_"))
    {
        let family = metric.strip_suffix("_bucket").unwrap_or(metric);
        // Families without a sample yet (no expiring license, no member) are still described.
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "the rules name {metric}, which the server does not write"
        );
    }
}

#[tokio::test]
async fn a_path_a_client_makes_up_adds_no_series_and_json_answers_are_compressed() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:Seven:2:0"])], quick()).await;
    let api = lab.running().api_addr;
    for i in 0..5 {
        let answer = lab
            .http
            .get(format!("http://{api}/no/such/path/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    }
    let text = scrape(&lab).await;
    assert!(!text.contains("/no/such"), "{text}");
    let s = samples(&text);
    assert_eq!(
        value(
            &s,
            r#"license_server_http_requests_total{port="api",method="GET",route="(unmatched)",code="4xx"}"#
        ),
        5.0
    );

    for encoding in ["br", "gzip"] {
        let answer = lab
            .http
            .get(format!("http://{api}/status/data.json"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()["content-encoding"], encoding);
    }
    let plain = lab
        .http
        .get(format!("http://{api}/status/data.json"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let data: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(data["cartridges"][0]["product_id"], 7);
    lab.stop().await;
}
