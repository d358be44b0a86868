//! The SFU end to end: the real server (HTTP, WebSocket signalling, UDP media) and real
//! WebRTC peers (str0m in client mode, real UDP sockets on loopback).
//!
//! Payloads are not real Opus (the SFU never decodes): each one is `NAME:COUNTER`, so a
//! receiver knows who sent it and when.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for anything to happen; never a measured duration.
const PATIENCE: Duration = Duration::from_secs(20);

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn get_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Signs up and returns (token, user id).
    async fn signup(&self, invite: &str, handle: &str) -> (String, String) {
        let v = self
            .post(
                "/v1/signup",
                None,
                json!({"invite": invite, "handle": handle, "name": handle}),
            )
            .await;
        (
            v["token"].as_str().unwrap().to_owned(),
            v["user"]["id"].as_str().unwrap().to_owned(),
        )
    }
}

/// A signalling connection that keeps every message it did not wait for.
struct Ws {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    seen: VecDeque<Value>,
    next_req: u64,
}

impl Ws {
    async fn join(addr: SocketAddr, room: &str, token: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/rooms/{room}/ws"))
            .await
            .unwrap();
        let mut ws = Ws {
            ws,
            seen: VecDeque::new(),
            next_req: 1,
        };
        ws.send(json!({"type": "hello", "protocol": 1, "token": token}))
            .await;
        let welcome = ws.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message in time")
                .expect("connection open")
                .unwrap();
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// Sends a request and returns its answer (`ok`, `error`, `media_answer`).
    async fn request(&mut self, mut v: Value) -> Value {
        let req = self.next_req;
        self.next_req += 1;
        v["req"] = json!(req);
        self.send(v).await;
        loop {
            let m = self.next().await;
            if m["req"] == json!(req) {
                return m;
            }
            self.seen.push_back(m);
        }
    }

    async fn ok(&mut self, v: Value) {
        let answer = self.request(v).await;
        assert_eq!(answer["type"], "ok", "{answer}");
    }

    /// Waits for a delta whose event matches `pred`.
    async fn wait_event(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        while let Some(m) = self.seen.pop_front() {
            if m["type"] == "delta" && pred(&m["event"]) {
                return m["event"].clone();
            }
        }
        loop {
            let m = self.next().await;
            if m["type"] == "delta" && pred(&m["event"]) {
                return m["event"].clone();
            }
        }
    }
}

/// What a media client saw.
#[derive(Debug)]
struct Heard {
    from: String,
    counter: u64,
    mid: Mid,
    level: Option<i8>,
}

/// A WebRTC peer driven by its own task: str0m in client mode on a real UDP socket. While
/// `talking` is set it sends a 20 ms "frame" `NAME:COUNTER` with an audio level.
struct MediaClient {
    talking: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    connected: Arc<AtomicBool>,
    heard: mpsc::UnboundedReceiver<Heard>,
}

impl MediaClient {
    /// Offers (optionally) a microphone and `slots` receive m-lines over `ws`.
    async fn connect(ws: &mut Ws, name: &str, mic: bool, slots: usize) -> MediaClient {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mic_mid =
            mic.then(|| api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        for _ in 0..slots {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = api.apply().unwrap();
        let answer = ws
            .request(json!({"type": "media_offer", "sdp": offer.to_sdp_string()}))
            .await;
        assert_eq!(answer["type"], "media_answer", "{answer}");
        let sdp = answer["sdp"].as_str().unwrap();
        assert!(sdp.contains("a=ice-lite"), "{sdp}");
        assert!(sdp.contains("typ host"), "{sdp}");
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(sdp).unwrap())
            .unwrap();

        let talking = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(AtomicBool::new(false));
        let (tx, heard) = mpsc::unbounded_channel();
        let me = MediaClient {
            talking: talking.clone(),
            sent: sent.clone(),
            connected: connected.clone(),
            heard,
        };
        let name = name.to_owned();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut next_frame = Instant::now();
            let mut rtp: u64 = 0;
            let pt: Option<Pt> = mic_mid.and_then(|m| {
                rtc.writer(m).and_then(|w| {
                    w.payload_params()
                        .find(|p| p.spec().codec == Codec::Opus)
                        .map(|p| p.pt())
                })
            });
            loop {
                // Drain outputs.
                let timeout = loop {
                    match rtc.poll_output() {
                        Ok(Output::Timeout(t)) => break t,
                        Ok(Output::Transmit(t)) => {
                            let _ = socket.send_to(&t.contents, t.destination).await;
                        }
                        Ok(Output::Event(Event::Connected)) => {
                            connected.store(true, Ordering::SeqCst)
                        }
                        Ok(Output::Event(Event::MediaData(d))) => {
                            let text = String::from_utf8_lossy(&d.data).into_owned();
                            let (from, counter) = text.split_once(':').unwrap_or(("?", "0"));
                            let _ = tx.send(Heard {
                                from: from.to_owned(),
                                counter: counter.parse().unwrap_or(0),
                                mid: d.mid,
                                level: d.ext_vals.audio_level,
                            });
                        }
                        Ok(Output::Event(_)) => {}
                        Err(_) => return,
                    }
                };
                if !rtc.is_alive() || tx.is_closed() {
                    return;
                }
                let wake = timeout.min(next_frame);
                tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        if let Ok((n, source)) = r {
                            if let Ok(contents) = buf[..n].try_into() {
                                let input = Input::Receive(Instant::now(), Receive {
                                    proto: Protocol::Udp,
                                    source,
                                    destination: local,
                                    contents,
                                });
                                let _ = rtc.handle_input(input);
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(wake.into()) => {}
                }
                let now = Instant::now();
                let _ = rtc.handle_input(Input::Timeout(now));
                if now >= next_frame {
                    next_frame = now + Duration::from_millis(20);
                    if let (Some(mid), Some(pt)) = (mic_mid, pt) {
                        if talking.load(Ordering::SeqCst) && connected.load(Ordering::SeqCst) {
                            let n = sent.fetch_add(1, Ordering::SeqCst) + 1;
                            let payload = format!("{name}:{n}").into_bytes();
                            if let Some(w) = rtc.writer(mid) {
                                let _ = w.audio_level(-20, true).write(
                                    pt,
                                    now,
                                    MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ),
                                    payload,
                                );
                            }
                            rtp += 960;
                        }
                    }
                }
            }
        });
        me
    }

    async fn wait_connected(&self) {
        let deadline = Instant::now() + PATIENCE;
        while !self.connected.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "media did not connect");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn next_heard(&mut self) -> Heard {
        tokio::time::timeout(PATIENCE, self.heard.recv())
            .await
            .expect("audio in time")
            .expect("client running")
    }

    /// Everything heard until `count` packets of `from` arrived (all returned).
    async fn hear_from(&mut self, from: &str, count: usize) -> Vec<Heard> {
        let mut all = Vec::new();
        let mut n = 0;
        while n < count {
            let h = self.next_heard().await;
            if h.from == from {
                n += 1;
            }
            all.push(h);
        }
        all
    }

    fn talk(&self, on: bool) {
        self.talking.store(on, Ordering::SeqCst);
    }

    async fn wait_sent(&self, at_least: u64) {
        let deadline = Instant::now() + PATIENCE;
        while self.sent.load(Ordering::SeqCst) < at_least {
            assert!(Instant::now() < deadline, "client did not send");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

/// A fresh server on loopback (SQLite in the returned directory).
async fn start_server() -> (ruang_server::Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = ruang_server::Server::start(ruang_server::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        rtc_port: 0,
        ..ruang_server::Config::default()
    })
    .await
    .unwrap();
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speakers_are_forwarded_listeners_and_demoted_speakers_are_not() {
    let (server, _dir) = start_server().await;
    assert_eq!(server.rtc_addr.ip(), server.addr.ip());
    assert_ne!(server.rtc_addr.port(), 0);
    let http = Http {
        base: server.public_url.clone(),
        client: reqwest::Client::new(),
    };
    let (maya_token, _maya) = http
        .signup(server.first_invite.as_deref().unwrap(), "maya")
        .await;
    let invites = http.get("/v1/invites", &maya_token).await;
    let code = |i: usize| invites[i]["code"].as_str().unwrap().to_owned();
    let (budi_token, budi_id) = http.signup(&code(0), "budi").await;
    let (cici_token, _cici) = http.signup(&code(1), "cici").await;
    let room = http
        .post(
            "/v1/rooms",
            Some(&maya_token),
            json!({"title": "Media", "kind": "open"}),
        )
        .await;
    let room = room["id"].as_str().unwrap();

    // Maya (moderator, unmuted), Budi and Cici (listeners).
    let mut maya_ws = Ws::join(server.addr, room, &maya_token).await;
    let mut budi_ws = Ws::join(server.addr, room, &budi_token).await;
    let mut cici_ws = Ws::join(server.addr, room, &cici_token).await;

    // A bad offer is refused and the connection stays usable.
    let bad = cici_ws
        .request(json!({"type": "media_offer", "sdp": "v=0\r\n"}))
        .await;
    assert_eq!(bad["type"], "error");
    assert_eq!(bad["code"], "bad_request");

    let mut maya = MediaClient::connect(&mut maya_ws, "maya", true, 2).await;
    // Budi is a listener whose client sends audio anyway.
    let mut budi = MediaClient::connect(&mut budi_ws, "budi", true, 2).await;
    // Cici is listen-only: no microphone m-line.
    let mut cici = MediaClient::connect(&mut cici_ws, "cici", false, 2).await;
    for c in [&maya, &budi, &cici] {
        c.wait_connected().await;
    }
    maya.talk(true);
    budi.talk(true);

    // Cici hears Maya, with the level the speaker sent; Budi hears Maya too.
    let heard = cici.hear_from("maya", 50).await;
    assert!(
        heard.iter().all(|h| h.from == "maya"),
        "only Maya is on stage"
    );
    assert!(heard.iter().all(|h| h.level == Some(-20)));
    let slots: std::collections::HashSet<Mid> = heard.iter().map(|h| h.mid).collect();
    assert_eq!(slots.len(), 1, "one speaker, one slot");
    let heard = budi.hear_from("maya", 10).await;
    assert!(heard.iter().all(|h| h.from == "maya"));
    // Budi (listener) was sending all along: his packets reached the server and were dropped.
    budi.wait_sent(50).await;
    let text = http.get_text("/metrics").await;
    assert!(metric(&text, "ruang_sfu_packets_dropped_not_on_stage_total") > 0);
    assert!(metric(&text, "ruang_sfu_packets_forwarded_total") > 0);
    assert_eq!(metric(&text, "ruang_sfu_peers"), 3);
    // Everyone sees Maya's speaking level.
    let levels = cici_ws
        .wait_event(|e| e["kind"] == "levels" && e["levels"][0]["level"].as_f64() > Some(0.0))
        .await;
    assert!(levels["levels"].as_array().unwrap().len() == 1, "{levels}");

    // Budi comes on stage and unmutes: now Cici and Maya hear him.
    maya_ws
        .ok(json!({"type": "invite_to_speak", "user": budi_id}))
        .await;
    budi_ws.ok(json!({"type": "accept_invite"})).await;
    budi_ws
        .ok(json!({"type": "set_muted", "muted": false}))
        .await;
    cici.hear_from("budi", 20).await;
    maya.hear_from("budi", 20).await;

    // Budi mutes himself: nothing he sends after the ok is forwarded.
    budi_ws
        .ok(json!({"type": "set_muted", "muted": true}))
        .await;
    let cut = budi.sent.load(Ordering::SeqCst);
    let heard = cici.hear_from("maya", 50).await;
    assert!(
        !heard.iter().any(|h| h.from == "budi" && h.counter > cut),
        "muted speaker forwarded"
    );
    budi_ws
        .ok(json!({"type": "set_muted", "muted": false}))
        .await;
    cici.hear_from("budi", 10).await;

    // Maya moves Budi back to the audience: from the next packet on, he is not forwarded.
    maya_ws
        .ok(json!({"type": "move_to_audience", "user": budi_id}))
        .await;
    let cut = budi.sent.load(Ordering::SeqCst);
    let heard = cici.hear_from("maya", 50).await;
    assert!(
        !heard.iter().any(|h| h.from == "budi" && h.counter > cut),
        "demoted speaker forwarded"
    );
    budi.wait_sent(cut + 50).await;
    // Maya never hears herself.
    while let Ok(h) = maya.heard.try_recv() {
        assert_ne!(h.from, "maya", "echoed to the speaker");
        assert!(h.from != "budi" || h.counter <= cut);
    }

    // Cici leaves: her peer goes, the others' stay.
    cici_ws.ok(json!({"type": "leave"})).await;
    drop(cici_ws);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = http.get_text("/metrics").await;
        if metric(&text, "ruang_sfu_peers") == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "peer not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await.unwrap();
}

/// The forwarding threads run above normal priority (a lower nice value), never real-time,
/// so a busy host delays packets less (root, as in CI, may always lower it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarding_threads_run_at_the_network_priority() {
    let (server, _dir) = start_server().await;
    // The threads set their priority as they start: wait until each shows up.
    let mut found = Vec::new();
    for _ in 0..50 {
        found.clear();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("ruang-sfu") {
                continue;
            }
            // /proc/PID/task/TID/stat: field 19 is the nice value, 41 the policy (after the
            // command name, which ends at the last ')').
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let nice: i32 = fields[16].parse().unwrap();
            let policy: u32 = fields[38].parse().unwrap();
            found.push((comm.trim().to_owned(), nice, policy));
        }
        if !found.is_empty() && found.iter().all(|(_, nice, _)| *nice != 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!found.is_empty(), "no SFU thread found");
    for (name, nice, policy) in &found {
        assert_eq!(*policy, 0, "{name} is not real-time (SCHED_OTHER)");
        assert!(
            (ruang_media::rt::NETWORK_NICE..=0).contains(nice),
            "{name}: nice {nice}"
        );
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root
        && std::env::var_os("RUANG_NO_RT").is_none()
        && std::env::var_os("RUANG_NO_NET_PRIORITY").is_none()
    {
        for (name, nice, _) in &found {
            assert_eq!(*nice, ruang_media::rt::NETWORK_NICE, "{name}");
        }
    }
    server.shutdown().await.unwrap();
}
