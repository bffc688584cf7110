//! `GET /status/events`: the status document pushed as the server's state changes, per pool; its
//! listeners counted in `/metrics` and gone when they hang up; bad input refused; streams that
//! end cleanly when the server stops.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::protocol::{Lab, Lic, quick};

/// How long a test waits for an event that must come (a change goes out within a tenth of a
/// second; this is only a bound on a test that fails).
const PATIENCE: Duration = Duration::from_secs(10);

/// One Server-Sent Event.
#[derive(Debug)]
struct Event {
    kind: String,
    id: u64,
    retry: Option<u64>,
    data: Value,
}

/// An open stream and what it sent that is not yet read as events.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(lab: &Lab, query: &str) -> Self {
        Self::open_for(lab, query, "").await
    }

    /// With `pool` in the `X-Pool-ID` header.
    async fn open_for(lab: &Lab, query: &str, pool: &str) -> Self {
        let response = lab
            .http
            .get(format!(
                "http://{}/status/events{query}",
                lab.running().api_addr
            ))
            .header("X-Pool-ID", pool)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-store");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); `None` when the stream ended cleanly.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("no event within the test's patience")
                .expect("the stream broke instead of ending");
            self.buffer.push_str(std::str::from_utf8(&chunk?).unwrap());
        }
    }

    /// Events until one whose document satisfies `wanted`.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Event {
        loop {
            let event = self.next().await.expect("the stream ended");
            if wanted(&event.data) {
                return event;
            }
        }
    }
}

/// An event block, or `None` for a comment alone.
fn parse(block: &str) -> Option<Event> {
    let (mut kind, mut id, mut retry, mut data) = (None, None, None, String::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => {}
            "event" => kind = Some(value.to_owned()),
            "id" => id = Some(value.parse().unwrap()),
            "retry" => retry = Some(value.parse().unwrap()),
            "data" => data.push_str(value),
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    Some(Event {
        kind: kind?,
        id: id.expect("an event without an id"),
        retry,
        data: serde_json::from_str(&data).unwrap(),
    })
}

/// Seats in use of product 7 v0 in a pushed document.
fn seats_in_use(document: &Value) -> u64 {
    document["cartridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["product_id"] == 7)
        .map(|c| c["statistic"]["runcount_in_use"].as_u64().unwrap())
        .unwrap()
}

async fn listeners(lab: &Lab) -> f64 {
    crate::metrics::scrape(lab)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("license_server_status_event_streams "))
        .expect("no license_server_status_event_streams in /metrics")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_grant_and_a_release_are_pushed_to_the_pools_listeners_as_they_happen() {
    let lab = Lab::start(
        &[
            Lic(1, None, &["7:0:Seven:2:0"]),
            Lic(2, Some("farm"), &["7:0:Seven:1:0"]),
        ],
        quick(),
    )
    .await;
    let mut default = Stream::open(&lab, "").await;
    let mut farm = Stream::open(&lab, "?pool=farm").await;

    // The first event comes at once: the current document, and how soon to reconnect.
    let first = default.next().await.unwrap();
    assert_eq!(first.kind, "status");
    assert_eq!(first.retry, Some(3000));
    assert_eq!(seats_in_use(&first.data), 0);
    assert_eq!(first.data["sessions"], serde_json::json!([]));
    // The same document data.json gives, without its sessions.
    let mut polled = lab.data("").await;
    polled["sessions"] = serde_json::json!([]);
    assert_eq!(first.data, polled);
    let farm_first = farm.next().await.unwrap();
    assert_eq!(farm_first.data["cartridges"][0]["runcount"], 1);
    assert_eq!(listeners(&lab).await, 2.0);

    let session = lab.open(None).await;
    let (license, _, _) = lab.grant(session, "job", 7, 0, "runcount").await;
    let granted = default.until(|d| seats_in_use(d) == 1).await;
    assert!(granted.id > first.id, "the count of changes moved on");
    let mut polled = lab.data("").await;
    polled["sessions"] = serde_json::json!([]);
    assert_eq!(granted.data, polled);

    lab.release(session, license).await;
    let released = default.until(|d| seats_in_use(d) == 0).await;
    assert!(released.id > granted.id);

    // The farm's listener heard of the changes too, but its pool's seat was never taken.
    let farm_later = farm.until(|_| true).await;
    assert!(farm_later.id > farm_first.id);
    assert_eq!(seats_in_use(&farm_later.data), 0);
    assert_eq!(farm_later.data["cartridges"][0]["runcount"], 1);

    // Listeners that hang up are no longer counted (nor served).
    drop((default, farm));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while listeners(&lab).await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listeners not let go"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A listener after a quiet spell starts the stream again.
    let mut again = Stream::open(&lab, "").await;
    assert_eq!(seats_in_use(&again.next().await.unwrap().data), 0);
    let session = lab.open(None).await;
    lab.grant(session, "again", 7, 0, "runcount").await;
    again.until(|d| seats_in_use(d) == 1).await;
    lab.stop().await;
}

#[tokio::test]
async fn a_bad_pool_is_refused_and_streams_end_cleanly_when_the_server_stops() {
    let lab = Lab::start(&[Lic(1, None, &["7:0:Seven:2:0"])], quick()).await;
    for (query, code) in [
        (format!("?pool={}", "p".repeat(65)), "INVALID_POOL_ID"),
        ("?pool=%07bell".to_owned(), "INVALID_POOL_ID"),
        ("?colour=blue".to_owned(), "INVALID_QUERY"),
    ] {
        let response = lab
            .http
            .get(format!(
                "http://{}/status/events{query}",
                lab.running().api_addr
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    // The header names the pool as for data.json, when the query does not.
    let mut nowhere = Stream::open_for(&lab, "", "nowhere").await;
    assert_eq!(
        nowhere.next().await.unwrap().data["cartridges"],
        serde_json::json!([])
    );

    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = Stream::open(&lab, "").await;
        stream.next().await.unwrap();
        streams.push(stream);
    }
    // The shutdown ends every stream (a clean end of the body, not a cut connection), so it
    // does not wait out its grace period for them.
    let stopping = tokio::spawn(lab.stop());
    for stream in streams.iter_mut().chain([&mut nowhere]) {
        while let Some(event) = stream.next().await {
            assert_eq!(event.kind, "status");
        }
    }
    stopping.await.unwrap();
}
