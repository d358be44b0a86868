//! What idle connections cost the real `ruang serve` process: memory per open WebSocket,
//! and memory given back once they close (rounds of connect / hold / close).

mod common;

use common::{free_port, Serve};
use futures_util::{SinkExt, StreamExt};
use ruang_client::ApiClient;
use ruang_proto::RoomKind;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A signed-in member's idle room connection (hello sent, welcome read).
async fn idle_socket(url: &str, token: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = serde_json::json!({"type":"hello","protocol":1,"token":token});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"welcome\"") => return ws,
            Some(Ok(_)) => {}
            other => panic!("no welcome: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_are_cheap_and_memory_comes_back() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let serve = Serve::start(
        data.path(),
        port,
        &["--rtc-port", "0", "--max-connections-per-ip", "0"],
    );
    let code = serve.first_invite();
    let mut admin = ApiClient::new(&server).unwrap();
    admin.signup(&code, "host", "Host").await.unwrap();
    let room = admin.create_room("Idle", RoomKind::Open).await.unwrap();
    let url = admin.ws_url(room.id.as_str()).to_string();
    let token = admin.token().unwrap().to_owned();

    // Idle upgraded WebSockets (the server waits up to 10 s for their hello).
    const N: usize = 1000;
    drop(idle_socket(&url, &token).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = serve.rss_kib();
    let mut after_close = Vec::new();
    let mut per_conn = Vec::new();
    for _round in 0..3 {
        let mut held = Vec::with_capacity(N);
        for _ in 0..N {
            let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
            held.push(ws);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        per_conn.push(serve.rss_kib().saturating_sub(base) * 1024 / N as u64);
        drop(held);
        // The server hands freed memory back every few seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut rss = serve.rss_kib();
        while rss > base + SLACK_KIB && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            rss = serve.rss_kib();
        }
        after_close.push(rss);
    }
    eprintln!(
        "base {base} KiB; bytes per open WebSocket per round {per_conn:?}; RSS after closing {after_close:?} KiB"
    );
    // It was about 140 kB per connection (tungstenite's default 128 KiB read buffer each).
    assert!(
        per_conn.iter().all(|&b| b < 48 * 1024),
        "bytes per idle WebSocket: {per_conn:?}"
    );
    // And it grew with every round (20 MB → 301, 303, 305 MB for 2,000 connections).
    assert!(
        after_close.iter().all(|&r| r <= base + SLACK_KIB),
        "memory not given back: base {base} KiB, after each round {after_close:?}"
    );
}

/// RSS above the starting point that still counts as "given back".
const SLACK_KIB: u64 = 6 * 1024;
