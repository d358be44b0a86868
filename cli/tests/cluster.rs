//! Cluster mode end to end: three `ruang serve` processes on loopback sharing a real Redis
//! server and a real PostgreSQL database. A room lives on one node (its owner); members
//! connect through any node; the owner is killed with SIGKILL and a survivor takes the room
//! over with the same roles; a node drains on SIGTERM.
//!
//! Needs `redis-server` (Debian's `redis-server` package) and `RUANG_TEST_POSTGRES_URL`;
//! skipped without them unless `RUANG_REQUIRE_CLUSTER=1` (the test script sets it).

mod common;

use common::{free_port, Serve};
use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, ConnectionState, RoomSession, SessionOptions};
use ruang_media::device::Source;
use ruang_proto::{Role, RoomKind, UserId};
use ruang_tests::media::{chunked_correlation, device, forcing_tone, listener_opts};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(40);
const SR: usize = 48_000;

/// A throwaway `redis-server` on a free port (no persistence).
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Option<Redis> {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("RUANG_REQUIRE_CLUSTER").as_deref() == Ok("1") {
                    panic!("RUANG_REQUIRE_CLUSTER=1 but redis-server cannot start: {e}");
                }
                eprintln!("note: redis-server not available ({e}); cluster tests skipped");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node of the test cluster.
struct Node {
    id: String,
    url: String,
    serve: Option<Serve>,
    _data: tempfile::TempDir,
}

struct Cluster {
    nodes: Vec<Node>,
    first_invite: String,
    _redis: Redis,
}

fn postgres_or_skip() -> Option<()> {
    if std::env::var("RUANG_TEST_POSTGRES_URL").is_ok() {
        return Some(());
    }
    if std::env::var("RUANG_REQUIRE_CLUSTER").as_deref() == Ok("1") {
        panic!("RUANG_REQUIRE_CLUSTER=1 but RUANG_TEST_POSTGRES_URL is not set");
    }
    eprintln!("note: RUANG_TEST_POSTGRES_URL not set; cluster tests skipped");
    None
}

async fn healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/healthz")).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Cluster {
    /// `n` nodes named n1…nN on one database and one Redis.
    async fn start(n: usize) -> Option<Cluster> {
        postgres_or_skip()?;
        let redis = Redis::start()?;
        let database = ruang_tests::fresh_postgres().await;
        let mut nodes = Vec::new();
        let mut first_invite = None;
        for i in 1..=n {
            let data = tempfile::tempdir().unwrap();
            let port = free_port();
            let id = format!("n{i}");
            let serve = Serve::start(
                data.path(),
                port,
                &[
                    "--database-url",
                    &database,
                    "--cluster",
                    &redis.url,
                    "--node-id",
                    &id,
                    "--rtc-port",
                    "0",
                    "--rtc-threads",
                    "1",
                    "--max-connections-per-ip",
                    "0",
                ],
            );
            if i == 1 {
                // The first node makes the database and prints the admin invite.
                first_invite = Some(serve.first_invite());
            }
            let url = format!("http://127.0.0.1:{port}");
            healthy(&url).await;
            nodes.push(Node {
                id,
                url,
                serve: Some(serve),
                _data: data,
            });
        }
        let c = Cluster {
            nodes,
            first_invite: first_invite.unwrap(),
            _redis: redis,
        };
        // Every node sees every other (heartbeats).
        let admin_probe = Instant::now();
        loop {
            let up = c.alive_in_redis().await;
            if up == n {
                break;
            }
            assert!(
                admin_probe.elapsed() < Duration::from_secs(10),
                "{up} of {n} nodes registered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(c)
    }

    fn node(&self, id: &str) -> &Node {
        self.nodes.iter().find(|n| n.id == id).unwrap()
    }

    /// The URLs of every node but `id`.
    fn urls_except(&self, id: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.id != id)
            .map(|n| n.url.clone())
            .collect()
    }

    /// Nodes registered, as `redis-cli` would count them (through Redis itself).
    async fn alive_in_redis(&self) -> usize {
        let client = redis::Client::open(self._redis.url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg("ruang:nodes")
            .query_async(&mut con)
            .await
            .unwrap();
        let mut alive = 0;
        for id in ids {
            let v: Option<String> = redis::cmd("GET")
                .arg(format!("ruang:node:{id}"))
                .query_async(&mut con)
                .await
                .unwrap();
            alive += v.is_some() as usize;
        }
        alive
    }
}

async fn signup(url: &str, code: &str, handle: &str) -> ApiClient {
    let mut c = ApiClient::new(url).unwrap();
    c.signup(code, handle, &handle.to_uppercase())
        .await
        .unwrap_or_else(|e| panic!("{handle} signs up at {url}: {e}"));
    c
}

/// `client`'s account as seen through the node at `url`.
fn through(client: &ApiClient, url: &str) -> ApiClient {
    ApiClient::new(url)
        .unwrap()
        .with_token(client.token().unwrap())
}

async fn join(client: &ApiClient, room: &str) -> RoomSession {
    RoomSession::join(
        client.ws_url(room),
        client.token().unwrap().to_owned(),
        SessionOptions {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(300),
            ..SessionOptions::default()
        },
    )
    .await
    .expect("joins")
}

/// `GET /v1/admin/cluster` through `url`.
async fn cluster_view(url: &str, admin: &ApiClient) -> Value {
    reqwest::Client::new()
        .get(format!("{url}/v1/admin/cluster"))
        .bearer_auth(admin.token().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn owner_of(url: &str, admin: &ApiClient, room: &str) -> Option<(String, i64)> {
    let view = cluster_view(url, admin).await;
    view["rooms"].as_array()?.iter().find_map(|r| {
        (r["room"] == room).then(|| Some((r["node"].as_str()?.to_owned(), r["fence"].as_i64()?)))?
    })
}

async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

/// The admin maya (through node n1) and members `names` she invited, each signed up through
/// n1; then a room of maya's: its id, owner node and fencing token.
async fn people_and_room(
    c: &Cluster,
    names: &[&str],
    title: &str,
) -> (ApiClient, Vec<ApiClient>, String, String, i64) {
    let u1 = c.node("n1").url.clone();
    let maya = signup(&u1, &c.first_invite, "maya").await;
    let codes = maya.invites().await.unwrap();
    let mut members = Vec::new();
    for (name, code) in names.iter().zip(&codes) {
        members.push(signup(&u1, &code.code, name).await);
    }
    let room = maya
        .create_room(title, RoomKind::Open)
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    let (owner, fence) = owner_of(&u1, &maya, &room)
        .await
        .expect("the room has an owner");
    (maya, members, room, owner, fence)
}

/// `member` raises a hand, `moderator` sees it and invites them, they accept and unmute
/// (speakers come up muted): the stage flow, through whatever nodes the two are on.
async fn bring_on_stage(moderator: &RoomSession, member: &RoomSession) {
    member.raise_hand().await.unwrap();
    moderator
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| {
                r.hands
                    .iter()
                    .any(|h| h.participant.user.id == *member.me())
            })
        })
        .await
        .expect("the moderator sees the hand");
    moderator.invite_to_speak(member.me()).await.unwrap();
    member
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .expect("the invite reaches the member");
    member.accept_invite().await.unwrap();
    member.set_muted(false).await.unwrap();
}

fn role_of(session: &RoomSession, user: &UserId) -> Option<Role> {
    let state = session.state();
    let room = state.room.room.as_ref()?;
    if room.you.user.id == *user {
        return Some(room.you.role);
    }
    room.stage
        .iter()
        .chain(room.audience.iter())
        .find(|p| p.user.id == *user)
        .map(|p| p.role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_room_is_served_through_every_node() {
    let Some(c) = Cluster::start(3).await else {
        return;
    };
    let (u1, u2, u3) = (
        c.node("n1").url.clone(),
        c.node("n2").url.clone(),
        c.node("n3").url.clone(),
    );
    let maya = signup(&u1, &c.first_invite, "maya").await;
    // Members sign up through other nodes with maya's codes (one database).
    let codes = maya.invites().await.unwrap();
    let budi = signup(&u2, &codes[0].code, "budi").await;
    let citra = signup(&u3, &codes[1].code, "citra").await;
    let dewi = signup(&u3, &codes[2].code, "dewi").await;
    let eko = signup(&u1, &codes[3].code, "eko").await;

    // Created through n1: placed on the least-loaded node, which owns it.
    let room = maya
        .create_room("Across the cluster", RoomKind::Open)
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    let (owner, fence) = owner_of(&u2, &maya, &room)
        .await
        .expect("the room has an owner");
    assert!(fence >= 1);
    let view = cluster_view(&u3, &maya).await;
    assert_eq!(view["cluster"], true);
    assert_eq!(view["nodes"].as_array().unwrap().len(), 3, "{view}");
    // Placement: a room weighs on its node, so the next room goes to another one (once
    // the owner's heartbeat says it has the room).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = cluster_view(&u1, &maya).await;
        let counted = view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == owner.as_str() && n["rooms"].as_u64() == Some(1));
        if counted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the owner's load never showed the room: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = budi
        .create_room("Second", RoomKind::Open)
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    let (second_owner, _) = owner_of(&u1, &maya, &second).await.unwrap();
    assert_ne!(
        second_owner, owner,
        "the least-loaded node takes a new room"
    );

    // Everyone joins through a node: maya (moderator) through n2, budi through n3,
    // citra through n1, dewi through n2, eko through n3.
    let maya_s = join(&through(&maya, &u2), &room).await;
    let budi_s = join(&through(&budi, &u3), &room).await;
    let citra_s = join(&through(&citra, &u1), &room).await;
    let dewi_s = join(&through(&dewi, &u2), &room).await;
    let eko_s = join(&through(&eko, &u3), &room).await;
    assert_eq!(maya_s.state().room.my_role(), Some(Role::Moderator));

    // Commands through any node reach the owner and its events every member: budi (n3)
    // raises a hand, maya (n2) invites him up.
    bring_on_stage(&maya_s, &budi_s).await;
    for s in [&citra_s, &dewi_s] {
        s.wait_for(PATIENCE, |st| {
            st.room.room.as_ref().is_some_and(|r| {
                r.stage
                    .iter()
                    .any(|p| p.user.id == *budi_s.me() && p.role == Role::Speaker)
            })
        })
        .await
        .expect("every node's members see budi on stage");
    }

    // The hallway and the room's summary through every node.
    for url in [&u1, &u2, &u3] {
        let hall = through(&citra, url).hallway().await.unwrap();
        assert!(
            hall.iter().any(|r| r.id.as_str() == room),
            "the room is in the hallway through {url}"
        );
        let summary = through(&citra, url).room(&room, None).await.unwrap();
        assert_eq!(summary.title, "Across the cluster");
    }

    // Audio: budi (through n3) speaks; citra (n1), dewi (n2) and eko (n3) hear him.
    let mut listeners = Vec::new();
    for s in [&citra_s, &dewi_s, &eko_s] {
        let mut dev = device(Source::Silence);
        let media = MediaSession::start(s, &mut dev, listener_opts())
            .await
            .expect("listener media starts");
        listeners.push((dev, media));
    }
    // A listener's modified client sends anyway: never forwarded, whatever node.
    let (_sneaky_dev, sneaky) = forcing_tone(&maya_s).await;
    maya_s.set_muted(true).await.unwrap();
    let reference = ruang_media::signal::speech_like(SR * 4, 5);
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(Source::gated(reference.clone(), false, go.clone()));
    let media = MediaSession::start(&budi_s, &mut mic, MediaOptions::default())
        .await
        .expect("speaker media starts");
    go.store(true, Ordering::Release);
    for (_, m) in &listeners {
        m.wait_for(PATIENCE, |s| s.frames_with_audio >= 190)
            .await
            .unwrap_or_else(|s| panic!("audio did not arrive: {s:#?}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The media cascade: every node served the media of the members that reached it
    // (citra on n1, maya and dewi on n2, budi on n3), and the owner sent the room's audio
    // once to each other node with listeners, not once per listener.
    for n in &c.nodes {
        let offers = metric(&n.url, "ruang_sfu_offers_accepted_total").await;
        assert!(offers >= 1.0, "{} served media offers: {offers}", n.id);
    }
    let owner_url = &c.node(&owner).url;
    let sent = metric(owner_url, "ruang_cascade_datagrams_sent_total").await;
    let subscribed = metric(owner_url, "ruang_cascade_subscriptions").await;
    let edges_with_listeners = 2.0;
    assert!(
        subscribed >= edges_with_listeners,
        "the nodes serving listeners subscribed to the owner: {subscribed}"
    );
    assert!(
        sent >= 190.0 * edges_with_listeners,
        "the owner sent the speaker's audio down to each edge: {sent}"
    );
    assert!(
        sent <= 400.0 * 3.0,
        "one stream per edge, not per listener: {sent}"
    );
    media.stop().await;
    let sneaky_sent = sneaky.stats().packets_sent;
    sneaky.stop().await;
    assert!(sneaky_sent > 100, "the muted client kept sending");
    for (mut dev, m) in listeners {
        m.stop().await;
        let rec = dev.take_recording();
        let chunks = chunked_correlation(&reference, &rec);
        let good = chunks.iter().filter(|&&c| c >= 0.9).count();
        assert!(
            good + 2 >= chunks.len(),
            "the listener hears the speaker, and only him (a 1 kHz tone mixed in would \
             break the correlation): {chunks:.3?}"
        );
    }
    let dropped = metric(
        &c.node(&owner).url,
        "ruang_sfu_packets_dropped_not_on_stage_total",
    )
    .await;
    assert!(
        dropped + 5.0 >= sneaky_sent as f64,
        "the owner's SFU dropped the muted moderator's packets: {dropped} of {sneaky_sent}"
    );
    // Connections that reached other nodes than the owner were bridged to it.
    let mut bridged = 0.0;
    for n in &c.nodes {
        bridged += metric(&n.url, "ruang_ws_forwarded_total").await;
    }
    assert!(
        bridged >= 2.0,
        "room WebSockets were bridged to the owner: {bridged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_is_killed_and_a_survivor_takes_the_room_with_its_roles() {
    let Some(mut c) = Cluster::start(3).await else {
        return;
    };
    let (maya, members, room, owner, fence) =
        people_and_room(&c, &["budi", "citra"], "Survives").await;
    let (budi, citra) = (&members[0], &members[1]);
    // Members reach the room through the two other nodes (behind one public name, a load
    // balancer would send their reconnections to live nodes the same way).
    let others = c.urls_except(&owner);
    let maya_s = join(&through(&maya, &others[0]), &room).await;
    let budi_s = join(&through(budi, &others[1]), &room).await;
    let citra_s = join(&through(citra, &others[0]), &room).await;
    bring_on_stage(&maya_s, &budi_s).await;
    maya_s.set_muted(true).await.unwrap();
    citra_s.raise_hand().await.unwrap();
    maya_s
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| {
                r.hands
                    .iter()
                    .any(|h| h.participant.user.id == *citra_s.me())
                    && r.stage.iter().any(|p| p.user.id == *budi_s.me())
            })
        })
        .await
        .unwrap();

    // budi speaks a steady tone; citra listens.
    let mut mic = device(Source::sine(440.0, 0.3));
    let speaker = MediaSession::start(&budi_s, &mut mic, MediaOptions::default())
        .await
        .unwrap();
    let mut ear = device(Source::Silence);
    let listener = MediaSession::start(&citra_s, &mut ear, listener_opts())
        .await
        .unwrap();
    listener
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 50)
        .await
        .expect("audio flows before the kill");

    // SIGKILL the owner.
    let killed = c.nodes.iter_mut().find(|n| n.id == owner).unwrap();
    killed.serve.as_ref().unwrap().signal("-KILL");
    let t0 = Instant::now();
    let _ = killed.serve.take();
    let heard_before = listener.stats().frames_with_audio;
    // Audio comes back for the listener: a survivor took the room and the clients moved.
    // (What was in the jitter buffer at the kill plays out first: 10 frames past that.)
    listener
        .wait_for(PATIENCE, |s| s.frames_with_audio >= heard_before + 10)
        .await
        .unwrap_or_else(|s| panic!("audio did not come back: {s:#?}"));
    // The figure docs/benchmarks.md quotes (p50/p95 over runs of this test).
    eprintln!(
        "failover: audio back {} ms after SIGKILL of the owner",
        t0.elapsed().as_millis()
    );
    listener
        .wait_for(PATIENCE, |s| s.frames_with_audio >= heard_before + 100)
        .await
        .unwrap_or_else(|s| panic!("audio did not keep flowing: {s:#?}"));

    let (new_owner, new_fence) = owner_of(&others[0], &maya, &room).await.unwrap();
    assert_ne!(new_owner, owner);
    assert!(new_fence > fence, "a takeover takes a newer fencing token");
    // Roles and the hand queue came through.
    for s in [&maya_s, &budi_s, &citra_s] {
        s.wait_for(PATIENCE, |st| st.connection == ConnectionState::Connected)
            .await
            .unwrap();
    }
    assert_eq!(role_of(&maya_s, maya_s.me()), Some(Role::Moderator));
    assert_eq!(role_of(&maya_s, budi_s.me()), Some(Role::Speaker));
    assert_eq!(role_of(&maya_s, citra_s.me()), Some(Role::Listener));
    let hands = maya_s.state().room.room.unwrap().hands;
    assert!(
        hands.iter().any(|h| h.participant.user.id == *citra_s.me()),
        "citra's raised hand survived: {hands:?}"
    );
    let you = maya_s.state().room.room.unwrap().you;
    assert!(you.muted, "maya's mute survived the takeover");
    // Commands keep working on the new owner.
    maya_s.invite_to_speak(citra_s.me()).await.unwrap();
    citra_s
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .expect("the new owner runs the room");
    speaker.stop().await;
    listener.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_hands_its_rooms_over() {
    let Some(mut c) = Cluster::start(2).await else {
        return;
    };
    let (maya, members, room, owner, fence) = people_and_room(&c, &["budi"], "Moving").await;
    let other = c.nodes.iter().find(|n| n.id != owner).unwrap().url.clone();
    let maya_s = join(&through(&maya, &other), &room).await;
    let budi_s = join(&through(&members[0], &other), &room).await;
    budi_s.raise_hand().await.unwrap();
    maya_s
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| !r.hands.is_empty())
        })
        .await
        .unwrap();

    // SIGTERM: the owner drains and exits.
    let node = c.nodes.iter_mut().find(|n| n.id == owner).unwrap();
    let mut serve = node.serve.take().unwrap();
    serve.signal("-TERM");
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "a drained node exits cleanly: {status}");

    let (new_owner, new_fence) = owner_of(&other, &maya, &room).await.expect("taken over");
    assert_ne!(new_owner, owner);
    assert!(new_fence > fence);
    let view = cluster_view(&other, &maya).await;
    assert_eq!(
        view["nodes"].as_array().unwrap().len(),
        1,
        "the drained node left: {view}"
    );
    maya_s
        .wait_for(PATIENCE, |s| {
            s.connection == ConnectionState::Connected
                && s.room.room.as_ref().is_some_and(|r| {
                    r.hands
                        .iter()
                        .any(|h| h.participant.user.id == *budi_s.me())
                })
        })
        .await
        .expect("the moderator is back, the hand still raised");
    maya_s.invite_to_speak(budi_s.me()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_limits_hold_across_nodes() {
    let Some(c) = Cluster::start(3).await else {
        return;
    };
    let (u1, u2, u3) = (
        c.node("n1").url.clone(),
        c.node("n2").url.clone(),
        c.node("n3").url.clone(),
    );
    let maya = signup(&u1, &c.first_invite, "maya").await;
    let codes = maya.invites().await.unwrap();
    let budi = signup(&u1, &codes[0].code, "budi").await;

    // A member hosts at most 3 live rooms, wherever they were placed or asked for.
    let mut rooms = Vec::new();
    for url in [&u1, &u2, &u3] {
        let room = through(&budi, url)
            .create_room("Mine", RoomKind::Open)
            .await
            .unwrap();
        rooms.push(room.id.as_str().to_owned());
    }
    let owners: std::collections::HashSet<String> = {
        let mut s = std::collections::HashSet::new();
        for r in &rooms {
            s.insert(owner_of(&u1, &maya, r).await.unwrap().0);
        }
        s
    };
    eprintln!("budi's rooms are on {owners:?}");
    let fourth = through(&budi, &u2)
        .create_room("One too many", RoomKind::Open)
        .await;
    assert!(
        matches!(
            &fourth,
            Err(ruang_client::ClientError::Api {
                code: ruang_proto::ErrorCode::LimitReached,
                ..
            })
        ),
        "the fourth room is refused cluster-wide: {fourth:?}"
    );

    // Logging out through one node closes the session's room connection on another.
    let room = maya
        .create_room("Revocations", RoomKind::Open)
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    let (owner, _) = owner_of(&u1, &maya, &room).await.unwrap();
    let elsewhere = c.urls_except(&owner);
    let _host = join(&through(&maya, &c.node(&owner).url), &room).await;
    let budi_s = join(&through(&budi, &elsewhere[0]), &room).await;
    through(&budi, &elsewhere[1]).logout().await.unwrap();
    budi_s
        .wait_for(PATIENCE, |s| {
            matches!(
                s.connection,
                ConnectionState::Ended {
                    reason: Some(ruang_proto::CloseReason::SessionRevoked),
                    ..
                }
            )
        })
        .await
        .expect("the revoked session's room connection closed, wherever it ran");

    // Guessing invite codes: 20 failures per address per minute across the cluster, not
    // per node (each node alone would allow 60 here).
    let http = reqwest::Client::new();
    let mut refused_at = None;
    for i in 0..30 {
        let url = [&u1, &u2, &u3][i % 3];
        // Well-formed (20 base32 characters) but wrong.
        let abc = b"abcdefghijklmnopqrstuvwxyz234567";
        let code = format!(
            "wrongcodewrongcode{}{}",
            abc[i / 32] as char,
            abc[i % 32] as char
        );
        let status = http
            .get(format!("{url}/v1/invites/{code}"))
            .send()
            .await
            .unwrap()
            .status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            refused_at = Some(i);
            break;
        }
        assert_eq!(
            status,
            reqwest::StatusCode::BAD_REQUEST,
            "attempt {i}: invalid_invite"
        );
        // The other nodes hear of each failure over the bus within milliseconds.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        refused_at,
        Some(20),
        "the 21st guess is refused, whichever node gets it"
    );
}

/// Waits until `moderator`'s view of the room has (or no longer has) `user`.
async fn sees(moderator: &RoomSession, user: &UserId, present: bool) {
    moderator
        .wait_for(PATIENCE, |_| role_of(moderator, user).is_some() == present)
        .await
        .unwrap_or_else(|s| panic!("the moderator's view never had {user} = {present}: {s:#?}"));
}

async fn ended(session: &RoomSession) {
    session
        .wait_for(PATIENCE, |s| {
            matches!(s.connection, ConnectionState::Ended { .. })
        })
        .await
        .unwrap_or_else(|s| panic!("the session did not end: {s:#?}"));
}

/// A block or a ban made through one node reaches the room on the node that owns it, for a
/// member connected through a third node (docs/safety.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_bans_reach_rooms_on_other_nodes() {
    let Some(c) = Cluster::start(3).await else {
        return;
    };
    let (maya, members, room, owner, _) = people_and_room(&c, &["budi", "citra"], "Safe").await;
    let (budi, citra) = (&members[0], &members[1]);
    let others = c.urls_except(&owner);
    // maya hosts through the owner; budi and citra listen through another node; maya's
    // block and the ban go through the third one.
    let host = join(&through(&maya, &c.node(&owner).url), &room).await;
    let budi_in = join(&through(budi, &others[0]), &room).await;
    let citra_in = join(&through(citra, &others[0]), &room).await;
    sees(&host, budi_in.me(), true).await;
    sees(&host, citra_in.me(), true).await;

    through(&maya, &others[1]).block("budi").await.unwrap();
    ended(&budi_in).await;
    sees(&host, budi_in.me(), false).await;
    let again = RoomSession::join(
        through(budi, &others[0]).ws_url(&room),
        budi.token().unwrap().to_owned(),
        SessionOptions::default(),
    )
    .await;
    assert!(
        again.is_err(),
        "a blocked member cannot come back, through any node"
    );

    let out = through(&maya, &others[1])
        .admin_ban("citra", "cluster")
        .await
        .unwrap();
    assert!(out.sessions_revoked >= 1);
    ended(&citra_in).await;
    sees(&host, citra_in.me(), false).await;
    // maya is still there, on stage.
    assert_eq!(role_of(&host, host.me()), Some(Role::Moderator));
}

/// A recorded open room of `host`'s.
async fn recorded_room(host: &ApiClient, title: &str) -> String {
    host.create_room_with(&ruang_proto::CreateRoomRequest {
        title: title.into(),
        kind: RoomKind::Open,
        record: true,
        clips: false,
        e2ee: false,
    })
    .await
    .unwrap()
    .id
    .as_str()
    .to_owned()
}

/// `host` unmutes and speaks a steady tone (the device must live as long as the session).
async fn speak_a_tone(host: &RoomSession) -> (ruang_media::device::VirtualDevice, MediaSession) {
    host.set_muted(false).await.unwrap();
    let mut mic = device(Source::sine(440.0, 0.3));
    let speaker = MediaSession::start(host, &mut mic, MediaOptions::default())
        .await
        .unwrap();
    (mic, speaker)
}

/// The room's replay, once the server has made it.
async fn replay_when_made(client: &ApiClient, room: &str) -> ruang_proto::Replay {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(r) = client.replay(room, None).await {
            return r;
        }
        assert!(Instant::now() < deadline, "no replay");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Photos, clips and replays are files on the node that made them; every node serves them
/// (fetched once from the node that has them), and a deleted replay leaves every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_clips_and_replays_are_served_by_every_node() {
    let Some(c) = Cluster::start(3).await else {
        return;
    };
    let urls: Vec<String> = c.nodes.iter().map(|n| n.url.clone()).collect();
    let maya = signup(&urls[0], &c.first_invite, "maya").await;
    let http = reqwest::Client::new();
    let get = |url: String| {
        let (http, token) = (http.clone(), maya.token().unwrap().to_owned());
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            (r.status(), r.bytes().await.unwrap())
        }
    };
    let copies = |dir: &str, name: &str| {
        c.nodes
            .iter()
            .filter(|n| n._data.path().join("media").join(dir).join(name).exists())
            .count()
    };

    // A photo stored through n1, asked for through every node.
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 4) as u8, 90])
    })
    .write_to(&mut png, image::ImageFormat::Png)
    .unwrap();
    let hash = maya
        .set_avatar(png.into_inner())
        .await
        .unwrap()
        .avatar
        .expect("a photo");
    let photo = format!("{hash}-128.jpg");
    assert_eq!(copies("avatars", &photo), 1, "one node stored it");
    let mut bodies = Vec::new();
    for url in &urls {
        let (status, body) = get(format!("{url}/media/avatars/{photo}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "the photo through {url}");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same bytes");
    assert_eq!(copies("avatars", &photo), 3, "each node kept a copy");
    let (status, _) = get(format!(
        "{}/media/avatars/{}-128.jpg",
        urls[1],
        "0".repeat(32)
    ))
    .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "no node has it");

    // A recorded room where maya speaks a tone; clipped through a node that does not own it.
    let room = recorded_room(&maya, "On the record").await;
    let (owner, _) = owner_of(&urls[0], &maya, &room).await.unwrap();
    let other = c.nodes.iter().find(|n| n.id != owner).unwrap().url.clone();
    let host = join(&through(&maya, &c.node(&owner).url), &room).await;
    let (_mic, speaker) = speak_a_tone(&host).await;
    speaker
        .wait_for(PATIENCE, |s| s.packets_sent >= 150)
        .await
        .expect("three seconds of audio");
    let clip = through(&maya, &other).clip(&room).await.unwrap();
    let clip_name = format!("{}.ogg", clip.id);
    let mut clips = Vec::new();
    for url in &urls {
        let (status, body) = get(format!("{url}/media/clips/{clip_name}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "the clip through {url}");
        assert_eq!(&body[..4], b"OggS");
        clips.push(body);
    }
    assert!(clips.windows(2).all(|w| w[0] == w[1]));

    // The room ends; its replay plays through every node.
    speaker.stop().await;
    host.end_room().await.unwrap();
    replay_when_made(&through(&maya, &urls[2]), &room).await;
    let replay = format!("{room}.ogg");
    let mut replays = Vec::new();
    for url in &urls {
        let (status, body) = get(format!("{url}/media/replays/{replay}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "the replay through {url}");
        assert_eq!(&body[..4], b"OggS");
        replays.push(body);
    }
    assert!(replays.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(copies("replays", &replay), 3);

    // Deleted through one node: gone from every node's disk, refused everywhere.
    through(&maya, &urls[1]).delete_replay(&room).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while copies("replays", &replay) > 0 {
        assert!(
            Instant::now() < deadline,
            "a copy of the deleted replay stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for url in &urls {
        let (status, _) = get(format!("{url}/media/replays/{replay}")).await;
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    }
}

/// A recorded room that moves off a draining node keeps its whole recording: the spool goes
/// with the room and the new owner's recorder goes on after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_recorded_room_keeps_its_whole_replay() {
    let Some(mut c) = Cluster::start(2).await else {
        return;
    };
    let u1 = c.node("n1").url.clone();
    let maya = signup(&u1, &c.first_invite, "maya").await;
    let room = recorded_room(&maya, "Moving, on the record").await;
    let (owner, _) = owner_of(&u1, &maya, &room).await.unwrap();
    let other = c.nodes.iter().find(|n| n.id != owner).unwrap().url.clone();
    let host = join(&through(&maya, &other), &room).await;
    let (_mic, speaker) = speak_a_tone(&host).await;
    // About 3 s of voice recorded on the owner.
    let before = speaker
        .wait_for(PATIENCE, |s| s.packets_sent >= 150)
        .await
        .expect("audio before the drain")
        .packets_sent;

    let node = c.nodes.iter_mut().find(|n| n.id == owner).unwrap();
    let mut serve = node.serve.take().unwrap();
    serve.signal("-TERM");
    assert!(serve.child.wait().unwrap().success());
    host.wait_for(PATIENCE, |s| s.connection == ConnectionState::Connected)
        .await
        .expect("back in the room on the other node");
    // About 4 s more, recorded by the new owner.
    speaker
        .wait_for(PATIENCE, |s| s.packets_sent >= before + 250)
        .await
        .expect("audio after the drain");
    speaker.stop().await;
    host.end_room().await.unwrap();

    let replay = replay_when_made(&through(&maya, &other), &room).await;
    // Both parts (3 s + the 1 s seam + up to 4 s), not only the new owner's (≤ 4 s).
    eprintln!("replay of {} ms: {:?}", replay.duration_ms, replay.speakers);
    assert!(
        replay.duration_ms >= 6_000,
        "the replay lost the drained node's part: {replay:?}"
    );
    // The new owner's part comes after the old one's, not over it.
    assert!(
        replay
            .speakers
            .windows(2)
            .all(|w| w[1].start_ms >= w[0].end_ms),
        "the parts overlap: {:?}",
        replay.speakers
    );
}

/// An encrypted room across the cluster: the host is connected through the room's owner, a
/// listener through another node. Key packages, commits and welcomes reach the owner's relay
/// from either node; the host's device adds the listener's; the audio crosses the media
/// cascade as SFrame ciphertext and the listener opens and hears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_room_works_through_the_cluster_relay() {
    use ruang_client::e2ee::{E2eePhase, KeyAgent};
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let u1 = c.node("n1").url.clone();
    let maya = signup(&u1, &c.first_invite, "maya").await;
    let code = maya.invites().await.unwrap().remove(0).code;
    let budi = signup(&u1, &code, "budi").await;
    let room = maya
        .create_room_with(&ruang_proto::CreateRoomRequest {
            title: "Sealed across".into(),
            kind: RoomKind::Closed,
            record: false,
            clips: false,
            e2ee: true,
        })
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    maya.grant_access(&room, "budi").await.unwrap();
    let (owner, _) = owner_of(&u1, &maya, &room).await.expect("an owner");
    let edge = c.urls_except(&owner).remove(0);
    let maya = through(&maya, &c.node(&owner).url);
    let budi = through(&budi, &edge);
    let host = join(&maya, &room).await;
    let listener = join(&budi, &room).await;
    let agent = |s: &RoomSession, api: &ApiClient| {
        KeyAgent::start(
            s,
            api.clone(),
            ruang_e2ee::Device::new(s.me().as_str()).unwrap(),
        )
    };
    let host_keys = agent(&host, &maya);
    let listener_keys = agent(&listener, &budi);
    let member =
        |s: &ruang_client::e2ee::E2eeStatus| s.phase == E2eePhase::Member && s.members == 2;
    let at = listener_keys
        .wait_for(PATIENCE, member)
        .await
        .unwrap_or_else(|s| panic!("the edge's member was added: {s:?}"));
    let host_at = host_keys
        .wait_for(PATIENCE, |s| member(s) && s.epoch == at.epoch)
        .await
        .unwrap();
    assert_eq!(host_at.safety_code, at.safety_code, "one epoch, one code");

    let mut ears = device(Source::Silence);
    let heard = MediaSession::start(&listener, &mut ears, listener_opts())
        .await
        .expect("listener media starts");
    listener_keys.attach(heard.e2ee_keys().expect("encrypted media"));
    let reference = ruang_media::signal::speech_like(SR * 4, 9);
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(Source::gated(reference.clone(), false, go.clone()));
    let said = MediaSession::start(&host, &mut mic, MediaOptions::default())
        .await
        .expect("host media starts");
    host_keys.attach(said.e2ee_keys().expect("encrypted media"));
    go.store(true, Ordering::Release);
    heard
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 190)
        .await
        .unwrap_or_else(|s| panic!("encrypted audio did not cross the cascade: {s:#?}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opened = heard.stats().e2ee.expect("encrypted media");
    assert!(opened.frames_decrypted >= 190, "{opened:?}");
    assert!(
        metric(&c.node(&owner).url, "ruang_cascade_datagrams_sent_total").await >= 190.0,
        "the audio went through the cascade"
    );
    said.stop().await;
    heard.stop().await;
    let rec = ears.take_recording();
    let chunks = chunked_correlation(&reference, &rec);
    let good = chunks.iter().filter(|&&c| c >= 0.9).count();
    assert!(
        good + 2 >= chunks.len(),
        "the listener on another node hears the host: {chunks:.3?}"
    );
}
