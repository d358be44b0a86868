//! `ruang bench latency`: mouth-to-ear latency, join → first audio and playout quality through
//! the real server on loopback, with virtual audio devices on one shared clock, under
//! impairment conditions (random loss, jitter) applied by a UDP relay in front of each
//! listener. Method and figures: docs/benchmarks.md.
//!
//! Progress goes to stderr; the table (or JSON with `--json`) to stdout.

mod analysis;
mod device;
mod e2ee;
mod relay;
mod soak;
mod stoi;

use analysis::{
    analyze, percentile, FrameShares, Input, ListenerAnalysis, Recording, Speech,
    BURST_MIN_CORRELATION, INTELLIGIBLE, SR,
};
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use device::{BenchDevice, Clock};
use relay::{ImpairedSignaller, Impairment};
use ruang_client::media::ruang_media::JitterStats;
use ruang_client::media::{MediaOptions, MediaSession, Signaller, TransportOptions};
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_proto::RoomKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchAction {
    /// Mouth-to-ear latency, join → first audio and frame shares under loss and jitter.
    Latency(LatencyArgs),
    /// A bounded soak on loopback: rooms, members and speech for N minutes with one server
    /// restart; reports the server's memory and descriptors and checks the end state.
    Soak(soak::SoakArgs),
    /// The codec alone, as the reference of `scripts/bench-quality`: a WAV through the
    /// client's Opus encoder (same settings: VOIP, 32 kbit/s, in-band FEC, DTX) and decoder,
    /// optionally losing packets at random (concealed by Opus PLC, or rebuilt from the next
    /// packet's in-band FEC with `--fec`).
    Codec(CodecArgs),
    /// What an end-to-end encrypted room costs: SFrame per frame, MLS handshakes at given
    /// room sizes, and with `--joins N` the join time against a plain room.
    E2ee(e2ee::E2eeArgs),
}

#[derive(clap::Args)]
pub struct CodecArgs {
    /// Input WAV (converted to 48 kHz mono).
    #[arg(long)]
    wav: std::path::PathBuf,
    /// Output WAV (48 kHz mono, same length).
    #[arg(long)]
    out: std::path::PathBuf,
    /// Random packet loss in percent.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Recover a lost frame from the next packet's in-band FEC when that one arrived.
    #[arg(long)]
    fec: bool,
    /// Encoder packet-loss hint in percent (the client's floor, `MediaOptions::min_loss_hint`);
    /// default: the client's default floor, or `--loss` when that is higher.
    #[arg(long)]
    loss_hint: Option<u8>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
pub struct LatencyArgs {
    /// Benchmark this running server instead of one started in-process (needs --invite).
    #[arg(long)]
    server: Option<String>,
    /// Invite code for the benchmark's accounts on --server.
    #[arg(long)]
    invite: Option<String>,
    /// Seconds of talking measured per condition.
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    /// Seconds each condition plays before measuring, so the jitter buffers settle after
    /// connecting (a new listener starts with a deep buffer that drains; see join figures).
    #[arg(long, default_value_t = 6.0)]
    warmup: f64,
    /// Milliseconds of audio the listeners' engine keeps queued in the playback ring (client
    /// default: 10).
    #[arg(long)]
    playout_ms: Option<u32>,
    /// Listeners recording at once.
    #[arg(long, default_value_t = 3)]
    listeners: usize,
    /// Joins timed per condition (join → first audio).
    #[arg(long, default_value_t = 5)]
    joins: usize,
    /// Comma-separated: `clean`, `lossN` (N % random loss), `jitterN` (extra delay uniform in
    /// 0..2N ms, mean N), e.g. `loss5+jitter30` for both.
    #[arg(
        long,
        default_value = "clean,loss5,loss20,jitter30",
        value_delimiter = ','
    )]
    conditions: Vec<String>,
    /// Seed of the impairment RNG and the test signal.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What the speaker says: `synthetic` (continuous speech-like signal, no pauses) or
    /// `demo` (the bundled espeak-ng sentences, with pauses, so DTX and talk-spurt restarts
    /// are part of the measurement).
    #[arg(long, value_enum, default_value_t = Speech::Synthetic)]
    speech: Speech,
    /// Speak this WAV file (converted to 48 kHz mono, looped from its start) instead of
    /// `--speech`.
    #[arg(long)]
    wav: Option<std::path::PathBuf>,
    /// No probe chirps in the input (with `--wav`): the speech alone, for perceptual measures
    /// of the saved recordings (`scripts/bench-quality`). Mouth-to-ear and STOI columns stay
    /// empty (they need the probes).
    #[arg(long)]
    no_probes: bool,
    /// Write, per condition, what the speaker said and what each listener played over the
    /// measured span (WAV, 48 kHz mono) into this directory, to listen to.
    #[arg(long)]
    save_recordings: Option<std::path::PathBuf>,
    /// Floor of the speaker's encoder loss hint in percent (`MediaOptions::min_loss_hint`;
    /// client default 0).
    #[arg(long)]
    min_loss_hint: Option<u8>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub async fn bench(action: BenchAction) -> Result<()> {
    match action {
        BenchAction::Latency(args) => latency(args).await,
        BenchAction::Soak(args) => soak::soak(args).await,
        BenchAction::Codec(args) => codec(args),
        BenchAction::E2ee(args) => e2ee::e2ee(args).await,
    }
}

#[derive(Debug, Clone)]
struct Condition {
    name: String,
    impairment: Impairment,
}

fn parse_condition(s: &str) -> Result<Condition> {
    let mut imp = Impairment::default();
    let name = s.trim().to_ascii_lowercase();
    for part in name.split('+') {
        if part == "clean" {
            continue;
        }
        if let Some(n) = part.strip_prefix("loss") {
            let pct: f64 = n
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p| (0.0..100.0).contains(p))
                .ok_or_else(|| anyhow!("bad loss in condition {s:?} (e.g. loss5)"))?;
            imp.loss = pct / 100.0;
        } else if let Some(n) = part.strip_prefix("jitter") {
            imp.jitter_ms = n
                .trim_end_matches("ms")
                .parse()
                .map_err(|_| anyhow!("bad jitter in condition {s:?} (e.g. jitter30)"))?;
        } else {
            bail!("unknown condition {s:?}: use clean, lossN, jitterN or a+b");
        }
    }
    Ok(Condition {
        name,
        impairment: imp,
    })
}

/// One timed join.
#[derive(Debug, Clone, Copy)]
struct JoinSample {
    /// Hello sent → welcome received (`RoomSession::join` returned).
    welcome_ms: f64,
    /// → SDP offer ready (ICE gathering done) and sent.
    offer_ms: f64,
    /// → SDP answer received.
    answer_ms: f64,
    /// → media transport connected (`MediaSession::start_with` returned).
    connected_ms: f64,
    /// → first audible sample played.
    first_audio_ms: f64,
}

struct ConditionRun {
    condition: Condition,
    /// Global clock span measured.
    g0: u64,
    g1: u64,
    recordings: Vec<Recording>,
    playout: JitterStats,
    packets_received: u64,
    /// Per listener: samples of silence its device played because the ring was empty
    /// (engine late), over the measured span.
    device_underruns: Vec<u64>,
    /// Samples the speaker's capture ring dropped (engine late) over the measured span.
    speaker_capture_overruns: u64,
    /// Per listener, for `RUANG_BENCH_DEBUG`: playout adjustments over the measured span.
    playout_debug: Vec<String>,
    relay_media: u64,
    relay_dropped: u64,
    joins: Vec<JoinSample>,
    join_failures: usize,
}

struct ConditionResult {
    run: ConditionRun,
    listeners: Vec<ListenerAnalysis>,
}

fn listener_opts(playout_ms: Option<u32>) -> MediaOptions {
    let defaults = MediaOptions::default();
    MediaOptions {
        playout_ms: playout_ms.unwrap_or(defaults.playout_ms),
        capture: false,
        transport: TransportOptions {
            // Loopback only: the relay and the in-process server are on 127.0.0.1.
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..TransportOptions::default()
        },
        ..defaults
    }
}

fn ms_between(a: Instant, b: Instant) -> f64 {
    if b >= a {
        (b - a).as_secs_f64() * 1000.0
    } else {
        -((a - b).as_secs_f64() * 1000.0)
    }
}

/// A server the benchmark starts in-process on loopback, with a fresh data directory.
pub(crate) struct LocalServer {
    server: ruang_server::Server,
    _dir: tempfile::TempDir,
    pub url: String,
    /// The admin invite of the fresh server.
    pub invite: String,
}

impl LocalServer {
    /// Starts it; `tweak` changes the configuration first.
    pub(crate) async fn start(tweak: impl FnOnce(&mut ruang_server::Config)) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary data directory")?;
        let mut config = ruang_server::Config {
            addr: "127.0.0.1:0".parse().expect("valid"),
            data_dir: dir.path().to_owned(),
            rtc_port: 0,
            ..ruang_server::Config::default()
        };
        tweak(&mut config);
        let server = ruang_server::Server::start(config)
            .await
            .context("starting the server")?;
        let url = server.public_url.clone();
        let invite = server
            .first_invite
            .clone()
            .context("a fresh server has an admin invite")?;
        Ok(LocalServer {
            server,
            _dir: dir,
            url,
            invite,
        })
    }

    pub(crate) async fn stop(self) {
        let _ = self.server.shutdown().await;
    }
}

async fn join_room(c: &ApiClient, room: &str) -> Result<RoomSession> {
    let token = c.token().context("no session token")?.to_owned();
    RoomSession::join(c.ws_url(room), token, SessionOptions::default())
        .await
        .with_context(|| format!("cannot join room {room}"))
}

/// Everything a condition needs from the set-up.
struct Setup {
    clock: Clock,
    room: String,
    listeners: Vec<RoomSession>,
    joiner: ApiClient,
    seconds: f64,
    warmup: f64,
    playout_ms: Option<u32>,
    joins: usize,
    seed: u64,
}

/// Longest mouth-to-ear delay searched for.
const MAX_DELAY_MS: u64 = 1_000;

async fn run_condition(
    setup: &Setup,
    speaker: &MediaSession,
    index: usize,
    condition: &Condition,
) -> Result<ConditionRun> {
    let seed = setup.seed ^ ((index as u64 + 1) << 32);
    let record_seconds = setup.warmup + setup.seconds + 15.0;
    let mut medias = Vec::new();
    let mut devices = Vec::new();
    let mut signallers = Vec::new();
    for (i, session) in setup.listeners.iter().enumerate() {
        let sig = Arc::new(ImpairedSignaller::new(
            session.clone(),
            condition.impairment,
            seed ^ (i as u64 + 1).wrapping_mul(0x5851_F42D_4C95_7F2D),
        ));
        let mut dev = BenchDevice::new(setup.clock, None, record_seconds);
        let media = MediaSession::start_with(
            sig.clone() as Arc<dyn Signaller>,
            &mut dev,
            listener_opts(setup.playout_ms),
        )
        .await
        .with_context(|| format!("listener {i}: media did not start"))?;
        medias.push(media);
        devices.push(dev);
        signallers.push(sig);
    }
    for (i, m) in medias.iter().enumerate() {
        m.wait_for(Duration::from_secs(10), |s| s.frames_with_audio > 0)
            .await
            .map_err(|s| anyhow!("listener {i} hears nothing: {s:?}"))?;
    }
    // Let the jitter buffers settle on the path before measuring.
    tokio::time::sleep(Duration::from_secs_f64(setup.warmup)).await;
    let before: Vec<_> = medias.iter().map(|m| m.stats()).collect();
    let speaker_before = speaker.stats().capture_overruns;
    let g0 = setup.clock.now();
    tokio::time::sleep(Duration::from_secs_f64(setup.seconds)).await;
    let g1 = setup.clock.now();
    let after: Vec<_> = medias.iter().map(|m| m.stats()).collect();
    let speaker_capture_overruns = speaker.stats().capture_overruns - speaker_before;
    // Keep recording long enough for the last bursts (and their search range) to come out.
    tokio::time::sleep(Duration::from_millis(MAX_DELAY_MS + 300)).await;
    for m in medias {
        m.stop().await;
    }
    let recordings = devices.iter().map(|d| d.take_recording()).collect();
    let mut playout = JitterStats::default();
    let mut packets_received = 0;
    let device_underruns = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.playback_underruns - b.playback_underruns)
        .collect();
    let playout_debug = before
        .iter()
        .zip(&after)
        .map(|(b, a)| {
            let d = a.playout.since(&b.playout);
            format!(
                "trims {} (accelerates {}) lead-ins {} playout target {} ms; jitter buffer: underruns {} \
                 expanded {} discarded {} concealed {} recovered {} redundant {} late {}",
                a.playout_trims - b.playout_trims,
                a.playout_accelerates - b.playout_accelerates,
                a.playout_lead_ins - b.playout_lead_ins,
                a.playout_target_ms,
                d.underruns,
                d.expanded,
                d.discarded,
                d.concealed,
                d.recovered,
                d.redundant,
                d.late
            )
        })
        .collect();
    for (b, a) in before.iter().zip(&after) {
        let d = a.playout.since(&b.playout);
        playout.add(&d);
        packets_received += a.packets_received - b.packets_received;
    }
    let relay_media = signallers
        .iter()
        .map(|s| s.stats.media.load(Ordering::Relaxed))
        .sum();
    let relay_dropped = signallers
        .iter()
        .map(|s| s.stats.dropped.load(Ordering::Relaxed))
        .sum();
    drop(signallers);

    let mut joins = Vec::new();
    let mut join_failures = 0;
    for j in 0..setup.joins {
        match time_join(setup, condition, seed ^ (0x1000 + j as u64)).await {
            Ok(s) => joins.push(s),
            Err(e) => {
                eprintln!("bench:   join {} failed: {e:#}", j + 1);
                join_failures += 1;
            }
        }
    }
    Ok(ConditionRun {
        condition: condition.clone(),
        g0,
        g1,
        recordings,
        playout,
        packets_received,
        device_underruns,
        speaker_capture_overruns,
        playout_debug,
        relay_media,
        relay_dropped,
        joins,
        join_failures,
    })
}

/// A listener joins while the speaker talks: WebSocket hello → first audible sample played.
async fn time_join(setup: &Setup, condition: &Condition, seed: u64) -> Result<JoinSample> {
    let t0 = Instant::now();
    let session = join_room(&setup.joiner, &setup.room).await?;
    let welcome = Instant::now();
    let sig = Arc::new(ImpairedSignaller::new(
        session.clone(),
        condition.impairment,
        seed,
    ));
    let mut dev = BenchDevice::new(setup.clock, None, 0.0);
    let media = MediaSession::start_with(
        sig.clone() as Arc<dyn Signaller>,
        &mut dev,
        listener_opts(setup.playout_ms),
    )
    .await
    .context("media did not start")?;
    let connected = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    let heard = loop {
        if let Some(g) = dev.first_heard() {
            break Some(g);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    media.stop().await;
    let _ = session.leave(true).await;
    drop(session);
    // Let the server see the leave before the next join.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let g = heard.ok_or_else(|| anyhow!("no audio within 10 s of joining"))?;
    let (offer, answer) = sig
        .offered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or((connected, connected));
    Ok(JoinSample {
        welcome_ms: ms_between(t0, welcome),
        offer_ms: ms_between(t0, offer),
        answer_ms: ms_between(t0, answer),
        connected_ms: ms_between(t0, connected),
        first_audio_ms: ms_between(t0, setup.clock.instant_of(g)),
    })
}

async fn latency(args: LatencyArgs) -> Result<()> {
    if !(args.seconds.is_finite() && args.seconds >= 2.0) {
        bail!("--seconds must be at least 2");
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        bail!("--warmup must be a number of seconds");
    }
    if args.listeners == 0 {
        bail!("--listeners must be at least 1");
    }
    let conditions = args
        .conditions
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(|c| parse_condition(c))
        .collect::<Result<Vec<_>>>()?;
    if conditions.is_empty() {
        bail!("no --conditions");
    }

    // The server: in-process on loopback with a temporary data dir, or the given one.
    let mut local = None;
    let (url, invite) = match &args.server {
        Some(url) => (
            url.clone(),
            args.invite
                .clone()
                .context("--server needs --invite CODE for the benchmark's accounts")?,
        ),
        None => {
            let server = LocalServer::start(|_| {}).await?;
            let url_and_invite = (server.url.clone(), server.invite.clone());
            local = Some(server);
            url_and_invite
        }
    };
    eprintln!("bench: server {url}");

    // Accounts: a moderator who speaks, the recording listeners, one account that joins.
    let tag = rand::random::<u32>() % 1_000_000;
    let mut speaker_api = ApiClient::new(&url)?;
    speaker_api
        .signup(&invite, &format!("bench{tag}s"), "Bench speaker")
        .await
        .context("signing up the speaker")?;
    let mut codes: Vec<String> = Vec::new();
    let mut members: Vec<ApiClient> = Vec::new();
    for i in 0..=args.listeners {
        if codes.is_empty() {
            let inviter = members.last().unwrap_or(&speaker_api);
            codes = inviter
                .invites()
                .await?
                .into_iter()
                .map(|i| i.code)
                .collect();
        }
        let code = codes.pop().context("out of invite codes")?;
        let mut c = ApiClient::new(&url)?;
        c.signup(&code, &format!("bench{tag}l{i}"), &format!("Listener {i}"))
            .await
            .context("signing up a listener")?;
        members.push(c);
    }
    let joiner = members.pop().expect("one extra member");
    let room = speaker_api
        .create_room("Latency bench", RoomKind::Open)
        .await?
        .id
        .as_str()
        .to_owned();

    let speaker = join_room(&speaker_api, &room).await?;
    if speaker.state().room.you().is_some_and(|p| p.muted) {
        speaker.set_muted(false).await.context("cannot unmute")?;
    }
    let clock = Clock::new();
    let input = match &args.wav {
        Some(path) => {
            let clip = ruang_media::wav::read_wav(path)
                .with_context(|| format!("reading {}", path.display()))?;
            if clip.len() < SR {
                bail!("{} is shorter than 1 s", path.display());
            }
            Input::from_clip(&clip, !args.no_probes)
        }
        None if args.no_probes => bail!("--no-probes needs --wav"),
        None => Input::probe(20, args.seed, args.speech),
    };
    let mut mic = BenchDevice::new(clock, Some(input.clone()), 0.0);
    let speaker_opts = MediaOptions {
        min_loss_hint: args
            .min_loss_hint
            .unwrap_or(MediaOptions::default().min_loss_hint),
        ..MediaOptions::default()
    };
    let speaker_media = MediaSession::start(&speaker, &mut mic, speaker_opts)
        .await
        .context("speaker media did not start")?;
    speaker_media
        .wait_for(Duration::from_secs(10), |s| {
            s.send_allowed && s.packets_sent > 0
        })
        .await
        .map_err(|s| anyhow!("the speaker does not send: {s:?}"))?;

    let mut listeners = Vec::new();
    for c in &members {
        listeners.push(join_room(c, &room).await?);
    }
    let setup = Setup {
        clock,
        room,
        listeners,
        joiner,
        seconds: args.seconds,
        warmup: args.warmup,
        playout_ms: args.playout_ms,
        joins: args.joins,
        seed: args.seed,
    };

    let mut runs = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        eprintln!(
            "bench: {} ({} listeners, {} s, {} joins)",
            c.name, args.listeners, args.seconds, args.joins
        );
        runs.push(run_condition(&setup, &speaker_media, i, c).await?);
    }
    let sent = speaker_media.stats();
    speaker_media.stop().await;
    for s in &setup.listeners {
        let _ = s.leave(true).await;
    }
    drop(speaker);
    if let Some(server) = local {
        server.stop().await;
    }

    if let Some(dir) = &args.save_recordings {
        save_recordings(dir, &input, &runs)?;
    }
    eprintln!("bench: analysing");
    let results = tokio::task::spawn_blocking(move || {
        runs.into_iter()
            .map(|run| {
                let listeners = run
                    .recordings
                    .iter()
                    .map(|rec| {
                        analyze(
                            &input,
                            rec,
                            run.g0,
                            run.g1,
                            (MAX_DELAY_MS as usize * SR / 1000) as i64,
                            (SR * 60 / 1000) as i64,
                        )
                    })
                    .collect();
                ConditionResult { run, listeners }
            })
            .collect::<Vec<_>>()
    })
    .await?;

    if std::env::var_os("RUANG_BENCH_DEBUG").is_some() {
        for r in &results {
            for (i, l) in r.listeners.iter().enumerate() {
                let d: Vec<String> = l
                    .bursts
                    .iter()
                    .map(|d| format!("{:.0}@{:.2}", d.ms(), d.correlation))
                    .collect();
                let w: Vec<String> = l.windows.iter().map(|c| format!("{c:.2}")).collect();
                eprintln!(
                    "bench: {} listener {i} bursts (ms@corr): {}",
                    r.run.condition.name,
                    d.join(" ")
                );
                eprintln!(
                    "bench: {} listener {i} windows: {}",
                    r.run.condition.name,
                    w.join(" ")
                );
                eprintln!(
                    "bench: {} listener {i} {}",
                    r.run.condition.name,
                    r.run.playout_debug.get(i).map_or("", |s| s.as_str())
                );
                eprintln!(
                    "bench: {} listener {i} device underruns: {} samples; STOI per 2 s: {}",
                    r.run.condition.name,
                    r.run.device_underruns.get(i).copied().unwrap_or(0),
                    l.stoi
                        .iter()
                        .map(|s| format!("{s:.3}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    if args.json {
        let json = serde_json::json!({
            "build": profile,
            "listeners": args.listeners,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "playout_ms": args.playout_ms.unwrap_or(MediaOptions::default().playout_ms),
            "joins": args.joins,
            "seed": args.seed,
            "speaker_packets_sent": sent.packets_sent,
            "conditions": results.iter().map(result_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_table(&results, profile, &args);
    }
    Ok(())
}

/// `DIR/CONDITION-input.wav` and `DIR/CONDITION-listener-N.wav` over the measured span (the
/// listeners' files start at the same global index as the input's, so they are as late as
/// the path made them, and run [`MAX_DELAY_MS`] longer so the end of the span is in them).
fn save_recordings(dir: &std::path::Path, input: &Input, runs: &[ConditionRun]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for run in runs {
        let len = (run.g1 - run.g0) as usize;
        let said = input.window(run.g0, len);
        let name = |suffix: &str| dir.join(format!("{}-{suffix}.wav", run.condition.name));
        ruang_media::wav::write_wav(name("input"), &said)?;
        for (i, rec) in run.recordings.iter().enumerate() {
            let from = run.g0.saturating_sub(rec.start) as usize;
            let tail = MAX_DELAY_MS as usize * SR / 1000;
            let played: Vec<i16> = (from..from + len + tail)
                .map(|k| rec.samples.get(k).copied().unwrap_or(0))
                .collect();
            ruang_media::wav::write_wav(name(&format!("listener-{i}")), &played)?;
        }
    }
    eprintln!("bench: recordings written to {}", dir.display());
    Ok(())
}

/// `ruang bench codec`: see [`BenchAction::Codec`].
fn codec(args: CodecArgs) -> Result<()> {
    use ruang_media::{OpusDecoder, SendConfig, SendPipeline, FRAME_SAMPLES};
    if !(0.0..100.0).contains(&args.loss) {
        bail!("--loss must be a percentage below 100");
    }
    let input = ruang_media::wav::read_wav(&args.wav)
        .with_context(|| format!("reading {}", args.wav.display()))?;
    let mut send = SendPipeline::new(SendConfig::default())?;
    let hint = args.loss_hint.map_or_else(
        || {
            let floor = i32::from(MediaOptions::default().min_loss_hint);
            if args.loss > 0.0 {
                (args.loss.round().clamp(1.0, 30.0) as i32).max(floor)
            } else {
                floor
            }
        },
        i32::from,
    );
    if hint > 0 {
        // What the client's encoder hint would settle on.
        send.encoder_mut().set_packet_loss_perc(hint)?;
    }
    // Encode everything first (the FEC decision needs the next packet).
    let mut packets: Vec<Option<Vec<u8>>> = Vec::new();
    let mut frame = vec![0i16; FRAME_SAMPLES];
    for chunk in input.chunks(FRAME_SAMPLES) {
        frame.fill(0);
        frame[..chunk.len()].copy_from_slice(chunk);
        packets.push(send.process(&frame)?.map(|p| p.payload.to_vec()));
    }
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let lost: Vec<bool> = packets
        .iter()
        .map(|p| p.is_some() && rng.gen_bool(args.loss / 100.0))
        .collect();
    let mut dec = OpusDecoder::new()?;
    let mut out = Vec::with_capacity(input.len() + FRAME_SAMPLES);
    let mut pcm = vec![0i16; FRAME_SAMPLES];
    let (mut sent, mut dropped) = (0usize, 0usize);
    for (i, p) in packets.iter().enumerate() {
        match p {
            // DTX: nothing sent, the receiver plays nothing for this speaker.
            None => pcm.fill(0),
            Some(p) if !lost[i] => {
                sent += 1;
                dec.decode(p, &mut pcm)?;
            }
            Some(_) => {
                sent += 1;
                dropped += 1;
                match packets.get(i + 1) {
                    Some(Some(next)) if args.fec && !lost[i + 1] => {
                        dec.decode_fec(next, &mut pcm)?
                    }
                    _ => dec.conceal(&mut pcm)?,
                }
            }
        }
        out.extend_from_slice(&pcm);
    }
    out.truncate(input.len());
    ruang_media::wav::write_wav(&args.out, &out)?;
    eprintln!(
        "bench codec: {} frames, {sent} packets, {dropped} lost ({:.1} %)",
        packets.len(),
        100.0 * dropped as f64 / sent.max(1) as f64
    );
    Ok(())
}

/// Figures of one condition, shared by the table and the JSON.
struct Figures {
    bursts: usize,
    delays: Vec<f64>,
    windows: Vec<f64>,
    /// STOI of every 2 s piece of every listener.
    stoi: Vec<f64>,
    joins: Vec<f64>,
    shares: FrameShares,
}

fn figures(r: &ConditionResult) -> Figures {
    let bursts = r.listeners.iter().map(|l| l.bursts.len()).sum();
    let delays = r
        .listeners
        .iter()
        .flat_map(|l| l.found().map(|d| d.ms()))
        .collect();
    let windows = r
        .listeners
        .iter()
        .flat_map(|l| l.windows.iter().copied())
        .collect();
    let stoi = r
        .listeners
        .iter()
        .flat_map(|l| l.stoi.iter().copied())
        .collect();
    let joins = r.run.joins.iter().map(|j| j.first_audio_ms).collect();
    Figures {
        bursts,
        delays,
        windows,
        stoi,
        joins,
        shares: FrameShares::from_stats(&r.run.playout),
    }
}

fn share_at_least(v: &[f64], min: f64) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().filter(|&&c| c >= min).count() as f64 / v.len() as f64)
    }
}

fn result_json(r: &ConditionResult) -> serde_json::Value {
    let f = figures(r);
    let p = |v: &[f64], q: f64| percentile(v, q);
    let imp = r.run.condition.impairment;
    let pl = &r.run.playout;
    serde_json::json!({
        "condition": r.run.condition.name,
        "impairment": { "loss": imp.loss, "jitter_ms": imp.jitter_ms },
        "relay": { "media_datagrams": r.run.relay_media, "dropped": r.run.relay_dropped },
        "mouth_to_ear_ms": {
            "bursts": f.bursts,
            "found": f.delays.len(),
            "p50": p(&f.delays, 50.0), "p95": p(&f.delays, 95.0), "p99": p(&f.delays, 99.0),
            "min": p(&f.delays, 0.0), "max": p(&f.delays, 100.0),
        },
        "join_to_first_audio_ms": {
            "joins": f.joins.len(),
            "failed": r.run.join_failures,
            "p50": p(&f.joins, 50.0), "p95": p(&f.joins, 95.0),
            "samples": r.run.joins.iter().map(|j| serde_json::json!({
                "welcome_ms": j.welcome_ms,
                "offer_ms": j.offer_ms,
                "answer_ms": j.answer_ms,
                "connected_ms": j.connected_ms,
                "first_audio_ms": j.first_audio_ms,
            })).collect::<Vec<_>>(),
        },
        "frames": {
            "total": f.shares.total,
            "received": f.shares.received,
            "redundant_red": f.shares.redundant,
            "recovered_fec": f.shares.recovered,
            "concealed_plc": f.shares.concealed,
            "missing": f.shares.missing,
            "counters": {
                "received": pl.received, "redundant": pl.redundant, "recovered": pl.recovered,
                "concealed": pl.concealed,
                "underruns": pl.underruns, "expanded": pl.expanded, "late": pl.late,
                "discarded": pl.discarded, "duplicates": pl.duplicates, "empty": pl.empty,
            },
            "packets_received": r.run.packets_received,
            "device_underrun_samples": r.run.device_underruns,
        },
        "speaker_capture_overruns": r.run.speaker_capture_overruns,
        "stoi": {
            "pieces": f.stoi.len(),
            "mean": mean(&f.stoi),
            "p5": p(&f.stoi, 5.0),
            "min": p(&f.stoi, 0.0),
        },
        "speech_windows": {
            "windows": f.windows.len(),
            "share_at_least_0_8": share_at_least(&f.windows, INTELLIGIBLE),
            "median_correlation": p(&f.windows, 50.0),
        },
    })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_table(results: &[ConditionResult], profile: &str, args: &LatencyArgs) {
    println!(
        "ruang bench latency ({profile} build; {} listeners, {} s measured per condition after \
         {} s warm-up, {} joins, playout queue {} ms; through the real server on loopback)",
        args.listeners,
        args.seconds,
        args.warmup,
        args.joins,
        args.playout_ms
            .unwrap_or(MediaOptions::default().playout_ms)
    );
    println!();
    println!(
        "{:<16} {:>7} {:>14} {:>14} {:>14} {:>14} {:>14} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "condition",
        "loss%",
        "bursts found",
        "m2e p50 ms",
        "m2e p95 ms",
        "m2e p99 ms",
        "join p50/p95",
        "recv%",
        "red%",
        "fec%",
        "plc%",
        "miss%",
        "STOI",
    );
    for r in results {
        let f = figures(r);
        let applied = if r.run.relay_media > 0 {
            format!(
                "{:.1}",
                100.0 * r.run.relay_dropped as f64 / r.run.relay_media as f64
            )
        } else {
            "-".into()
        };
        println!(
            "{:<16} {:>7} {:>14} {:>14} {:>14} {:>14} {:>14} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>9}",
            r.run.condition.name,
            applied,
            format!("{}/{}", f.delays.len(), f.bursts),
            fmt_opt(percentile(&f.delays, 50.0), 1),
            fmt_opt(percentile(&f.delays, 95.0), 1),
            fmt_opt(percentile(&f.delays, 99.0), 1),
            format!(
                "{}/{}",
                fmt_opt(percentile(&f.joins, 50.0), 0),
                fmt_opt(percentile(&f.joins, 95.0), 0)
            ),
            100.0 * f.shares.received,
            100.0 * f.shares.redundant,
            100.0 * f.shares.recovered,
            100.0 * f.shares.concealed,
            100.0 * f.shares.missing,
            fmt_opt(mean(&f.stoi), 3),
        );
    }
    println!();
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "join p50 ms", "welcome", "offer", "answer", "connected", "first audio"
    );
    for r in results {
        let p50 = |f: fn(&JoinSample) -> f64| {
            let v: Vec<f64> = r.run.joins.iter().map(f).collect();
            fmt_opt(percentile(&v, 50.0), 0)
        };
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>12}",
            r.run.condition.name,
            p50(|j| j.welcome_ms),
            p50(|j| j.offer_ms),
            p50(|j| j.answer_ms),
            p50(|j| j.connected_ms),
            p50(|j| j.first_audio_ms),
        );
    }
    println!();
    println!(
        "m2e: mouth-to-ear per probe burst (found = correlation ≥ {BURST_MIN_CORRELATION}); \
         join: WebSocket hello → first audible sample played (ms); frames: jitter-buffer \
         playout of the measured span (red = played from a later packet's RED copy, fec = \
         rebuilt from in-band FEC, plc = concealed, miss = underrun or inserted); STOI: short-time objective \
         intelligibility of what the listeners played against the input (0..1; mean over 2 s \
         pieces; 1.0 = unchanged, about 0.75 or more = highly intelligible); loss%: RTP/RTCP \
         datagrams the relay dropped."
    );
}
