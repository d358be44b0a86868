//! `ruang bench e2ee`: what an end-to-end encrypted room costs on this machine: SFrame per
//! audio frame (sender and receiver) and the MLS handshakes of rooms of given sizes (creating
//! and processing a commit that removes one or a batch of listeners, adding one, the joiner's
//! welcome). With `--joins N`, also the join time of an encrypted room against a plain one
//! through a real server in-process. The figures of docs/benchmarks.md's "Encrypted rooms"
//! section.

use super::analysis::percentile;
use anyhow::{anyhow, Context, Result};
use ruang_client::e2ee::{E2eePhase, KeyAgent};
use ruang_client::media::ruang_media::device::{Pacing, Source, VirtualConfig, VirtualDevice};
use ruang_client::media::ruang_media::signal::speech_like;
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, RoomSession};
use ruang_e2ee::{cost, Device};
use ruang_proto::{CreateRoomRequest, RoomKind, UserId};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct E2eeArgs {
    /// Room sizes (devices in the group) to measure handshakes at.
    #[arg(long, value_delimiter = ',', default_value = "100,2000")]
    members: Vec<usize>,
    /// Joiners added per commit while the room fills (the rekey policy's join batching).
    #[arg(long, default_value_t = 50)]
    join_batch: usize,
    /// Opus frame size for the SFrame figures (80 B: 20 ms at 32 kbit/s).
    #[arg(long, default_value_t = 80)]
    frame_bytes: usize,
    /// Also time joins (0: skip): a plain and an encrypted closed room on a server started
    /// in-process, the host speaking in both; N members join each room one after another
    /// (the rooms alternate), timed from `RoomSession::join` to the first played audio.
    #[arg(long, default_value_t = 0)]
    joins: usize,
    /// Seed of the host's synthetic speech.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub async fn e2ee(args: E2eeArgs) -> Result<()> {
    let f = cost::frames(args.frame_bytes, 20_000).map_err(|e| anyhow!("{e}"))?;
    println!(
        "SFrame, {} B Opus frame: +{} B per frame, encrypt {:.1} µs, decrypt {:.1} µs",
        f.frame_bytes,
        f.overhead_bytes,
        f.encrypt.as_secs_f64() * 1e6,
        f.decrypt.as_secs_f64() * 1e6
    );
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "| members | fill (commits of {}) | remove 1: commit / process / size | remove {}: commit / process / size | add 1: commit / size | welcome size | join |",
        args.join_batch,
        cost::REMOVE_BATCH
    );
    println!("|---|---|---|---|---|---|---|");
    for n in args.members {
        if n <= cost::REMOVE_BATCH + 2 {
            eprintln!("skipping {n}: a room must be larger than one removal batch");
            continue;
        }
        eprintln!("building a room of {n} devices…");
        let c = cost::handshakes(n, args.join_batch).map_err(|e| anyhow!("{e}"))?;
        println!(
            "| {} | {:.0} ms | {:.1} ms / {:.1} ms / {} B | {:.1} ms / {:.1} ms / {} B | {:.1} ms / {} B | {} B | {:.1} ms |",
            c.members,
            ms(c.build),
            ms(c.remove_one_commit),
            ms(c.remove_one_process),
            c.remove_one_bytes,
            ms(c.remove_batch_commit),
            ms(c.remove_batch_process),
            c.remove_batch_bytes,
            ms(c.add_one_commit),
            c.add_one_commit_bytes,
            c.add_one_welcome_bytes,
            ms(c.add_one_join),
        );
    }
    if args.joins > 0 {
        joins(args.joins, args.seed).await?;
    }
    Ok(())
}

const SR: usize = 48_000;
/// How long one join may take before it counts as failed.
const JOIN_PATIENCE: Duration = Duration::from_secs(20);

/// One timed join: milliseconds from the start of `RoomSession::join`.
#[derive(Debug, Clone, Copy)]
struct JoinSample {
    /// The server's welcome (`RoomSession::join` returned).
    session_ms: f64,
    /// Media transport connected (`MediaSession::start` returned).
    connected_ms: f64,
    /// Encrypted room: the key package went out (the agent is waiting to be added).
    asked_ms: Option<f64>,
    /// Encrypted room: the server tells the joiner a welcome waits (the host's device has
    /// committed its add).
    welcomed_ms: Option<f64>,
    /// Encrypted room: in the group, the media keyed (the agent is a member).
    member_ms: Option<f64>,
    /// The first played frame with the host in it.
    first_audio_ms: f64,
}

/// A room the host speaks in, and its timed joins.
struct BenchRoom {
    name: &'static str,
    id: String,
    host: RoomSession,
    media: MediaSession,
    agent: Option<KeyAgent>,
    /// The host's virtual microphone (kept open while the room runs).
    _mic: VirtualDevice,
    joins: Vec<JoinSample>,
    failures: usize,
}

/// A member who joins once.
struct Joiner {
    api: ApiClient,
    id: UserId,
}

/// `ruang bench e2ee --joins N`: join → first audio in a plain and an encrypted closed room.
async fn joins(n: usize, seed: u64) -> Result<()> {
    let server = super::LocalServer::start(|c| {
        // The host invites every joiner.
        c.invites_per_user = u32::try_from(2 * n).unwrap_or(u32::MAX).max(5);
    })
    .await?;
    let (url, invite) = (server.url.clone(), server.invite.clone());
    eprintln!("bench e2ee: server {url}");

    let tag = rand::random::<u32>() % 1_000_000;
    let mut host = ApiClient::new(&url)?;
    host.signup(&invite, &format!("bench{tag}h"), "Bench host")
        .await
        .context("signing up the host")?;
    let mut rooms = vec![
        host_room(&host, "plain", false, seed).await?,
        host_room(&host, "encrypted", true, seed).await?,
    ];

    // Fresh members, one per join, each allowed into the room it joins.
    let mut codes: Vec<String> = host.invites().await?.into_iter().map(|i| i.code).collect();
    let mut joiners: Vec<Vec<Joiner>> = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        let mut list = Vec::new();
        for j in 0..n {
            let code = codes.pop().context("out of invite codes")?;
            let handle = format!("bench{tag}r{r}j{j}");
            let mut api = ApiClient::new(&url)?;
            let me = api
                .signup(&code, &handle, &format!("Joiner {j}"))
                .await
                .context("signing up a joiner")?;
            host.grant_access(&room.id, &handle)
                .await
                .context("granting access")?;
            list.push(Joiner {
                api,
                id: me.user.id,
            });
        }
        list.reverse();
        joiners.push(list);
    }

    eprintln!("bench e2ee: {n} joins per room, alternating");
    for j in 0..n {
        // Alternate which room goes first, so machine noise hits both alike.
        let order = if j % 2 == 0 { [0, 1] } else { [1, 0] };
        for r in order {
            let joiner = joiners[r].pop().expect("one joiner per join");
            let room = &mut rooms[r];
            match time_join(room, &joiner).await {
                Ok(s) => {
                    eprintln!(
                        "bench e2ee:   {} join {}: first audio {:.0} ms",
                        room.name,
                        j + 1,
                        s.first_audio_ms
                    );
                    room.joins.push(s);
                }
                Err(e) => {
                    eprintln!("bench e2ee:   {} join {} failed: {e:#}", room.name, j + 1);
                    room.failures += 1;
                }
            }
            drop(joiner);
            // Let the server see the leave before the next join.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    let host_status = rooms[1].agent.as_ref().map(|a| a.status());
    print_joins(&rooms, n, host_status.as_ref());
    for room in rooms {
        room.media.stop().await;
        let _ = room.host.leave(true).await;
    }
    server.stop().await;
    Ok(())
}

/// The host's closed room (encrypted or not), with the host on stage speaking a synthetic
/// signal without pauses; in the encrypted room the host's device makes the MLS group.
async fn host_room(
    api: &ApiClient,
    name: &'static str,
    encrypted: bool,
    seed: u64,
) -> Result<BenchRoom> {
    let id = api
        .create_room_with(&CreateRoomRequest {
            title: format!("E2EE bench ({name})"),
            kind: RoomKind::Closed,
            record: false,
            clips: false,
            e2ee: encrypted,
        })
        .await
        .with_context(|| format!("creating the {name} room"))?
        .id
        .as_str()
        .to_owned();
    let host = super::join_room(api, &id).await?;
    if host.state().room.you().is_some_and(|p| p.muted) {
        host.set_muted(false).await.context("cannot unmute")?;
    }
    let agent = if encrypted {
        let device = Device::new(host.me().as_str())
            .map_err(|e| anyhow!("cannot make a device identity: {e}"))?;
        Some(KeyAgent::start(&host, api.clone(), device))
    } else {
        None
    };
    let mut mic = VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: 0,
        },
        Source::samples(speech_like(SR * 8, seed), true),
    );
    let media = MediaSession::start(&host, &mut mic, MediaOptions::default())
        .await
        .with_context(|| format!("the host's media did not start in the {name} room"))?;
    if let Some(agent) = &agent {
        agent.attach(
            media
                .e2ee_keys()
                .context("an encrypted room's media is encrypted")?,
        );
        agent
            .wait_for(JOIN_PATIENCE, |s| s.phase == E2eePhase::Member)
            .await
            .map_err(|s| anyhow!("the host's device did not make the group: {s:?}"))?;
    }
    media
        .wait_for(Duration::from_secs(10), |s| {
            s.send_allowed && s.packets_sent > 0
        })
        .await
        .map_err(|s| anyhow!("the host does not send in the {name} room: {s:?}"))?;
    Ok(BenchRoom {
        name,
        id,
        host,
        media,
        agent,
        _mic: mic,
        joins: Vec::new(),
        failures: 0,
    })
}

/// One member joins `room` while the host speaks: `RoomSession::join` → the first played
/// frame with the host's audio (in the encrypted room also → keyed). Then it leaves.
async fn time_join(room: &BenchRoom, joiner: &Joiner) -> Result<JoinSample> {
    let encrypted = room.agent.is_some();
    // A device's identity is made once and kept (`Device::restore`): not part of the join.
    let device = if encrypted {
        Some(
            Device::new(joiner.id.as_str())
                .map_err(|e| anyhow!("cannot make a device identity: {e}"))?,
        )
    } else {
        None
    };
    let mut dev = VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: 0,
        },
        Source::Silence,
    );
    let ms = |t: Instant, t0: Instant| (t - t0).as_secs_f64() * 1e3;

    let t0 = Instant::now();
    let session = super::join_room(&joiner.api, &room.id).await?;
    let session_ms = ms(Instant::now(), t0);
    let agent = device.map(|d| KeyAgent::start(&session, joiner.api.clone(), d));
    // The agent's phases, timed as they change (while media connects).
    let phases = agent.as_ref().map(|a| {
        let mut rx = a.subscribe();
        tokio::spawn(async move {
            let asked = rx
                .wait_for(|s| matches!(s.phase, E2eePhase::Waiting | E2eePhase::Member))
                .await
                .ok()
                .map(|_| Instant::now());
            let member = rx
                .wait_for(|s| s.phase == E2eePhase::Member)
                .await
                .ok()
                .map(|_| Instant::now());
            (asked, member)
        })
    });
    let welcomed = agent.as_ref().map(|_| {
        let mut rx = session.subscribe();
        tokio::spawn(async move {
            rx.wait_for(|s| s.room.mls_welcome.is_some())
                .await
                .ok()
                .map(|_| Instant::now())
        })
    });
    let outcome = async {
        let media = MediaSession::start(&session, &mut dev, super::listener_opts(None))
            .await
            .context("media did not start")?;
        let connected_ms = ms(Instant::now(), t0);
        if let Some(agent) = &agent {
            agent.attach(media.e2ee_keys().context("encrypted media")?);
        }
        let mut first_audio_ms = None;
        let deadline = t0 + JOIN_PATIENCE;
        loop {
            let now = Instant::now();
            if media.stats().frames_with_audio > 0 {
                first_audio_ms = Some(ms(now, t0));
                break;
            }
            if now > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (mut asked_ms, mut welcomed_ms, mut member_ms) = (None, None, None);
        if let Some(phases) = phases {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok((asked, member))) = tokio::time::timeout(left, phases).await {
                asked_ms = asked.map(|t| ms(t, t0));
                member_ms = member.map(|t| ms(t, t0));
            }
        }
        if let Some(welcomed) = welcomed {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(Some(t))) = tokio::time::timeout(left, welcomed).await {
                welcomed_ms = Some(ms(t, t0));
            }
        }
        let stats = media.stats();
        media.stop().await;
        let first_audio_ms = first_audio_ms.ok_or_else(|| {
            anyhow!(
                "no audio within {} s (agent {:?}; media {} packets received, connected {})",
                JOIN_PATIENCE.as_secs(),
                agent.as_ref().map(|a| a.status()),
                stats.packets_received,
                stats.connected
            )
        })?;
        Ok(JoinSample {
            session_ms,
            connected_ms,
            asked_ms,
            welcomed_ms,
            member_ms,
            first_audio_ms,
        })
    }
    .await;
    let _ = session.leave(true).await;
    drop(agent);
    drop(session);
    outcome
}

fn print_joins(rooms: &[BenchRoom], n: usize, host: Option<&ruang_client::e2ee::E2eeStatus>) {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    // A column only the encrypted room has.
    let p50_ms = |room: &BenchRoom, v: &[f64]| {
        if room.agent.is_some() {
            format!("{} ms", fmt(percentile(v, 50.0)))
        } else {
            "-".to_owned()
        }
    };
    let column = |room: &BenchRoom, f: fn(&JoinSample) -> Option<f64>| -> Vec<f64> {
        room.joins.iter().filter_map(f).collect()
    };
    println!();
    println!(
        "Join → first audio ({profile} build; {n} joins per room, the rooms alternating; \
         closed rooms on an in-process server on loopback, the host speaking)"
    );
    println!(
        "| room | joins (failed) | first audio p50 / p95 / max | session p50 | media connected p50 | key package sent p50 | welcome waits p50 | keyed p50 / p95 / max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for room in rooms {
        let audio = column(room, |j| Some(j.first_audio_ms));
        let session = column(room, |j| Some(j.session_ms));
        let connected = column(room, |j| Some(j.connected_ms));
        let asked = column(room, |j| j.asked_ms);
        let welcomed = column(room, |j| j.welcomed_ms);
        let member = column(room, |j| j.member_ms);
        let keyed = if room.agent.is_some() {
            format!(
                "{} / {} / {} ms",
                fmt(percentile(&member, 50.0)),
                fmt(percentile(&member, 95.0)),
                fmt(percentile(&member, 100.0))
            )
        } else {
            "-".to_owned()
        };
        println!(
            "| {} | {} ({}) | {} / {} / {} ms | {} ms | {} ms | {} | {} | {} |",
            room.name,
            room.joins.len(),
            room.failures,
            fmt(percentile(&audio, 50.0)),
            fmt(percentile(&audio, 95.0)),
            fmt(percentile(&audio, 100.0)),
            fmt(percentile(&session, 50.0)),
            fmt(percentile(&connected, 50.0)),
            p50_ms(room, &asked),
            p50_ms(room, &welcomed),
            keyed,
        );
    }
    if let [plain, encrypted] = rooms {
        let audio = |room: &BenchRoom| column(room, |j| Some(j.first_audio_ms));
        let (a, b) = (audio(plain), audio(encrypted));
        let diff = |q: f64| match (percentile(&a, q), percentile(&b, q)) {
            (Some(a), Some(b)) => format!("{:+.0}", b - a),
            _ => "-".to_owned(),
        };
        println!(
            "encrypted − plain, first audio: p50 {} ms, p95 {} ms, max {} ms",
            diff(50.0),
            diff(95.0),
            diff(100.0)
        );
    }
    if let Some(s) = host {
        println!(
            "the host's device: {} commits, at epoch {}, {} devices in the group",
            s.commits,
            s.epoch.map_or("-".to_owned(), |e| e.to_string()),
            s.members
        );
    }
    println!(
        "join: the start of RoomSession::join → the first played frame with the host's audio \
         (the joiner's media connects meanwhile). The encrypted room adds, in sequence: the \
         joiner's key package to the host's device (over the room's WebSocket) → the host's \
         device commits after its {} ms join batching window (RekeyPolicy) and the server says \
         a welcome waits → the joiner fetches and opens the welcome → its first epoch key keys the media; nothing is played before it.",
        ruang_e2ee::RekeyPolicy::default().join_window_ms
    );
}
