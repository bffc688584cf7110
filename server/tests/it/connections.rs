//! What a port does with connections that dawdle or crowd: slow and idle ones are closed, one
//! over the cap is told so in the API's error shape, and those already held keep being served.

use std::{net::SocketAddr, time::Duration};

use server::ConnectionLimits;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use super::{
    protocol::{Lab, Lic},
    serve::start_with,
};

/// A connection from `source` (any 127.x.y.z is this machine's loopback).
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends one `GET /health` and reads its answer (the head and a small body) on a kept connection.
async fn get_health(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    read_answer(stream).await
}

/// What the server sends until it pauses or closes, as text.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Ok(Err(_)) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server closes `stream` within `within` (EOF or reset), sending nothing first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0_u8; 1024];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_slow_or_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(
        dir.path(),
        ConnectionLimits {
            idle_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        },
    )
    .await;
    // Slowloris: a header that never ends.
    let mut slow = TcpStream::connect(running.api_addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    // Idle keep-alive: one request answered, then nothing.
    let mut idle = TcpStream::connect(running.api_addr).await.unwrap();
    assert!(get_health(&mut idle).await.starts_with("HTTP/1.1 200"));
    // Connected, nothing sent.
    let mut silent = TcpStream::connect(running.license_addr).await.unwrap();
    for stream in [&mut slow, &mut idle, &mut silent] {
        assert!(closed_within(stream, Duration::from_secs(10)).await);
    }
    // A connection that keeps sending requests is kept: three requests, 600 ms apart, on one
    // connection, each well within the timeout of the previous answer.
    let mut busy = TcpStream::connect(running.api_addr).await.unwrap();
    for _ in 0..3 {
        assert!(get_health(&mut busy).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn over_the_caps_a_connection_is_told_so_and_the_ones_held_are_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(
        dir.path(),
        ConnectionLimits {
            max_total: 3,
            max_per_address: 2,
            idle_timeout: Duration::from_secs(60),
        },
    )
    .await;
    let port = running.license_addr;
    let mut first = connect_from([127, 0, 0, 1], port).await;
    let mut second = connect_from([127, 0, 0, 1], port).await;
    assert!(get_health(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(get_health(&mut second).await.starts_with("HTTP/1.1 200"));

    // A third from the same address: over its share.
    let mut third = connect_from([127, 0, 0, 1], port).await;
    let answer = get_health(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let error: models::ApiError = serde_json::from_str(body).unwrap();
    assert_eq!(error.code(), Some(models::ErrorCode::TooManyConnections));
    assert!(
        error.error.message.contains("(2)"),
        "{}",
        error.error.message
    );

    // Another address takes the last slot of the port; one more from a third address finds the
    // port full.
    let mut other = connect_from([127, 0, 0, 2], port).await;
    assert!(get_health(&mut other).await.starts_with("HTTP/1.1 200"));
    let mut late = connect_from([127, 0, 0, 3], port).await;
    let answer = get_health(&mut late).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("TOO_MANY_CONNECTIONS"), "{answer}");

    // The held connections are still served, and the API port has a budget of its own.
    assert!(get_health(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut admin = connect_from([127, 0, 0, 3], running.api_addr).await;
    assert!(get_health(&mut admin).await.starts_with("HTTP/1.1 200"));

    // A slot is given back when its connection closes.
    drop(second);
    let mut again = None;
    for _ in 0..50 {
        let mut next = connect_from([127, 0, 0, 1], port).await;
        if get_health(&mut next).await.starts_with("HTTP/1.1 200") {
            again = Some(next);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        again.is_some(),
        "the closed connection's slot never came back"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_license_request_waiting_longer_than_the_idle_timeout_is_not_cut() {
    let mut lab = Lab::start(&[Lic(1, None, &["7:0:T:1:0"])], Default::default()).await;
    lab.connections.idle_timeout = Duration::from_secs(1);
    lab.restart().await;
    let lab = std::sync::Arc::new(lab);
    let holder = lab.open(None).await;
    let (license, _, _) = lab.grant(holder, "h", 7, 0, "all").await;
    let waiter = lab.open(None).await;
    let waiting = {
        let lab = lab.clone();
        tokio::spawn(async move { lab.request(waiter, "w", 7, 0, "all", 30).await })
    };
    // Three idle timeouts pass while the request waits on its connection.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !waiting.is_finished(),
        "nothing is free: the request still waits"
    );
    lab.release(holder, license).await;
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    std::sync::Arc::try_unwrap(lab).ok().unwrap().stop().await;
}

#[tokio::test]
async fn requests_the_http_parser_refuses_get_the_json_error_body_too() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(dir.path(), ConnectionLimits::default()).await;
    let many_headers: String = (0..200).map(|i| format!("x-{i}: y\r\n")).collect();
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nhost: test\r\n\r\n",
        "a".repeat(100_000)
    );
    for (port, request, status, code) in [
        (
            running.license_addr,
            format!("GET /health HTTP/1.1\r\nhost: test\r\n{many_headers}\r\n"),
            "431",
            "HEADERS_TOO_LARGE",
        ),
        (running.api_addr, long_uri, "414", "URI_TOO_LONG"),
        (
            running.license_addr,
            "NOT HTTP AT ALL\r\n\r\n".to_owned(),
            "400",
            "INVALID_REQUEST",
        ),
    ] {
        let mut stream = TcpStream::connect(port).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // A connection that was refused is closed; the next one is served as usual.
    let mut stream = TcpStream::connect(running.license_addr).await.unwrap();
    assert!(get_health(&mut stream).await.starts_with("HTTP/1.1 200"));
    running.stop().await.unwrap();
}
