//! Faults of the real `ruang serve` process: `kill -9` right after the server confirmed
//! room changes (nothing confirmed may be lost), and SIGTERM while a client holds a
//! half-sent request (the process must still finish its shutdown).

mod common;

use common::{free_port, Serve};
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_proto::{Role, RoomKind};
use ruang_tests::{backends, fresh_postgres, Backend, WAIT};
use std::io::Write;
use std::time::Duration;

/// `ruang serve` on `port` with room for 40 invites, on SQLite in `data` or on `db`.
fn start(data: &std::path::Path, port: u16, db: Option<&str>, extra: &[&str]) -> Serve {
    let mut args = vec!["--rtc-port", "0", "--invites-per-user", "40"];
    if let Some(url) = db {
        args.extend(["--database-url", url]);
    }
    args.extend(extra);
    Serve::start(data, port, &args)
}

async fn session(server: &str, c: &ApiClient, room: &str) -> RoomSession {
    RoomSession::join(
        c.ws_url(room),
        c.token().unwrap().to_owned(),
        SessionOptions {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(300),
            ..SessionOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("join {room} on {server}: {e}"))
}

async fn confirmed_changes_survive(backend: Backend) {
    let data = tempfile::tempdir().unwrap();
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres().await),
    };
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let serve = start(data.path(), port, db.as_deref(), &[]);
    let code = serve.first_invite();
    let mut admin = ApiClient::new(&server).unwrap();
    admin.signup(&code, "host", "Host").await.unwrap();
    let room = admin.create_room("Crash", RoomKind::Open).await.unwrap();
    let host = session(&server, &admin, room.id.as_str()).await;

    const N: usize = 30;
    let codes = admin.invites().await.unwrap();
    let mut members = Vec::new();
    for (i, invite) in codes.iter().enumerate().take(N) {
        let mut c = ApiClient::new(&server).unwrap();
        c.signup(&invite.code, &format!("member{i}"), &format!("M {i}"))
            .await
            .unwrap();
        let s = session(&server, &c, room.id.as_str()).await;
        members.push((c, s));
    }
    let ids: Vec<_> = members.iter().map(|(_, s)| s.me().clone()).collect();
    host.wait_for(WAIT, |s| {
        ids.iter().all(|id| s.room.participant(id).is_some())
    })
    .await
    .expect("everyone joined");
    host.set_hands_enabled(false).await.unwrap();
    host.set_muted(true).await.unwrap();
    for id in &ids {
        host.invite_to_speak(id).await.unwrap();
        // Within the 30 commands a second a connection may send.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // All accept at once; each `ok` is a promise the new speaker is on record.
    let accepts = members.iter().map(|(_, s)| async move {
        s.wait_for(WAIT, |st| {
            st.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .expect("invited");
        s.accept_invite().await
    });
    for r in futures_util::future::join_all(accepts).await {
        r.expect("accepted");
    }
    // No grace: the process dies right after the last `ok`.
    let mut serve = serve;
    serve.child.kill().unwrap();
    let _ = serve.child.wait();
    drop(serve);
    drop(members);
    drop(host);

    let serve = start(data.path(), port, db.as_deref(), &[]);
    serve.wait_line("listening");
    let host = session(&server, &admin, room.id.as_str()).await;
    let st = host
        .wait_for(WAIT, |s| s.room.room.is_some())
        .await
        .expect("snapshot");
    let snap = st.room.room.as_ref().unwrap();
    let speakers = ids
        .iter()
        .filter(|id| st.room.participant(id).map(|p| p.role) == Some(Role::Speaker))
        .count();
    assert_eq!(speakers, N, "every confirmed speaker is still on stage");
    assert!(!snap.hands_enabled, "hands off was confirmed, so it stays");
    assert!(snap.you.muted, "the host muted themself and was told ok");
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_room_changes_survive_kill_9() {
    for b in backends() {
        eprintln!("-- on {b:?}");
        confirmed_changes_survive(b).await;
    }
}

#[test]
fn sigterm_finishes_while_a_request_is_half_sent() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    // A header timeout far away: only the bounded shutdown can end the stuck request.
    let serve = start(data.path(), port, None, &["--header-timeout-secs", "600"]);
    serve.wait_line("listening");
    let mut stuck = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stuck
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    serve.signal("-TERM");
    serve.wait_line("stopped cleanly");
    let mut serve = serve;
    let status = serve.child.wait().unwrap();
    assert!(status.success());
    drop(stuck);
}
