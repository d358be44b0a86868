//! `ruang bot speak` / `ruang bot listen`: a room member with a virtual audio device, for
//! demos, tests and load. Status lines on stdout (`joined`, `on stage`, `streaming`, `done`),
//! errors on stderr with a non-zero exit.

use crate::account::authed;
use crate::Remote;
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use ruang_client::e2ee::{E2eePhase, KeyAgent};
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::session::{ConnectionState, SessionState};
use ruang_client::{RoomSession, SessionOptions};
use ruang_media::device::{Pacing, Source, VirtualConfig, VirtualDevice};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand)]
pub enum BotAction {
    /// Join a room, get on stage, unmute and stream a WAV file in real time.
    Speak {
        #[arg(long)]
        room: String,
        /// Room link token (closed rooms).
        #[arg(long)]
        link_token: Option<String>,
        /// WAV file (any rate and channel count; converted to 48 kHz mono).
        #[arg(long)]
        wav: PathBuf,
        /// Play the file in a loop.
        #[arg(long = "loop")]
        looping: bool,
        /// Stop after this many seconds (default: the file's length; with --loop: until Ctrl-C).
        #[arg(long)]
        seconds: Option<f64>,
        /// How long to wait for an invitation to speak after raising the hand.
        #[arg(long, default_value_t = 300)]
        wait_secs: u64,
        /// Send audio even when not on stage (tests: the server must drop it).
        #[arg(long)]
        force_send: bool,
        /// Encrypted rooms, moderators: print a link browser guests can listen with (the
        /// guest key is in its `#k=` fragment; anyone holding the link hears the room).
        #[arg(long)]
        guest_link: bool,
    },
    /// Join a room as a listener and record what it hears into a WAV file.
    Listen {
        #[arg(long)]
        room: String,
        /// Room link token (closed rooms).
        #[arg(long)]
        link_token: Option<String>,
        /// Output WAV file (48 kHz mono 16-bit).
        #[arg(long)]
        record: PathBuf,
        #[arg(long)]
        seconds: f64,
    },
}

pub async fn bot(remote: &Remote, action: BotAction) -> Result<()> {
    match action {
        BotAction::Speak {
            room,
            link_token,
            wav,
            looping,
            seconds,
            wait_secs,
            force_send,
            guest_link,
        } => {
            speak(
                remote,
                &room,
                link_token,
                &wav,
                looping,
                seconds,
                Duration::from_secs(wait_secs),
                force_send,
                guest_link,
            )
            .await
        }
        BotAction::Listen {
            room,
            link_token,
            record,
            seconds,
        } => listen(remote, &room, link_token, &record, seconds).await,
    }
}

pub(crate) async fn join(
    remote: &Remote,
    room: &str,
    link_token: Option<String>,
) -> Result<RoomSession> {
    let api = authed(remote)?;
    let token = api
        .token()
        .ok_or_else(|| anyhow!("this needs a session token"))?
        .to_owned();
    let opts = SessionOptions {
        link_token,
        ..SessionOptions::default()
    };
    let session = RoomSession::join(api.ws_url(room), token, opts)
        .await
        .with_context(|| format!("cannot join room {room}"))?;
    let me = session
        .state()
        .room
        .you()
        .map(|p| format!("@{} ({:?})", p.user.handle, p.role).to_lowercase())
        .unwrap_or_default();
    println!("joined {room} as {me}");
    Ok(session)
}

/// Encrypted rooms: this device's key agent (a fresh identity per run), which prints the
/// epoch and safety code as they change. None in a plain room.
fn key_agent(remote: &Remote, session: &RoomSession) -> Result<Option<KeyAgent>> {
    let encrypted = session.state().room.room.is_some_and(|r| r.e2ee.is_some());
    if !encrypted {
        return Ok(None);
    }
    let device = ruang_e2ee::Device::new(session.me().as_str())
        .map_err(|e| anyhow!("cannot make a device identity: {e}"))?;
    let agent = KeyAgent::start(session, authed(remote)?, device);
    println!("encrypted room: device {}", agent.status().fingerprint);
    let mut status = agent.subscribe();
    tokio::spawn(async move {
        let mut shown = None;
        while status.changed().await.is_ok() {
            let s = status.borrow_and_update().clone();
            let now = (s.phase.clone(), s.epoch);
            if shown.as_ref() == Some(&now) {
                continue;
            }
            match s.phase {
                E2eePhase::Waiting => println!("encrypted room: waiting to be added"),
                E2eePhase::Member => println!(
                    "encrypted room: epoch {}, {} devices, safety code {}",
                    s.epoch.unwrap_or(0),
                    s.members,
                    s.safety_code.as_deref().unwrap_or("")
                ),
                E2eePhase::Removed => println!("encrypted room: removed from the group"),
                _ => {}
            }
            shown = Some(now);
        }
    });
    Ok(Some(agent))
}

/// How long an encrypted room's bot waits to be in the group before giving up.
const KEYS_PATIENCE: Duration = Duration::from_secs(30);

fn on_stage(s: &SessionState) -> bool {
    s.room.you().is_some_and(|p| p.role.on_stage())
}

fn ended(s: &SessionState) -> bool {
    matches!(s.connection, ConnectionState::Ended { .. })
}

fn seconds(s: f64) -> Result<Duration> {
    if !(s.is_finite() && s > 0.0) {
        bail!("--seconds must be a positive number");
    }
    Ok(Duration::from_secs_f64(s))
}

#[allow(clippy::too_many_arguments)]
async fn speak(
    remote: &Remote,
    room: &str,
    link_token: Option<String>,
    wav: &std::path::Path,
    looping: bool,
    secs: Option<f64>,
    wait: Duration,
    force_send: bool,
    guest_link: bool,
) -> Result<()> {
    let samples = ruang_media::wav::read_wav(wav)
        .with_context(|| format!("cannot read {}", wav.display()))?;
    if samples.is_empty() {
        bail!("{} holds no audio", wav.display());
    }
    let run_for = match secs {
        Some(s) => Some(seconds(s)?),
        None if looping => None,
        // The file's length plus a little for the jitter buffers to drain at the far end.
        None => Some(Duration::from_secs_f64(
            samples.len() as f64 / f64::from(ruang_media::SAMPLE_RATE) + 0.5,
        )),
    };
    let session = join(remote, room, link_token).await?;

    if !on_stage(&session.state()) && !force_send {
        if !session
            .state()
            .room
            .room
            .is_some_and(|r| r.invited_to_speak)
        {
            session
                .raise_hand()
                .await
                .context("cannot raise the hand")?;
            println!("hand raised, waiting for an invitation to speak");
        }
        let s = session
            .wait_for(wait, |s| {
                ended(s) || on_stage(s) || s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
            })
            .await
            .map_err(|_| anyhow!("no invitation to speak within {} s", wait.as_secs()))?;
        if ended(&s) {
            bail!("the room session ended");
        }
        if !on_stage(&s) {
            session
                .accept_invite()
                .await
                .context("cannot accept the invitation")?;
            session
                .wait_for(Duration::from_secs(10), |s| ended(s) || on_stage(s))
                .await
                .ok()
                .filter(on_stage)
                .ok_or_else(|| anyhow!("did not come on stage"))?;
        }
    }
    if on_stage(&session.state()) {
        println!("on stage");
        if session.state().room.you().is_some_and(|p| p.muted) {
            session.set_muted(false).await.context("cannot unmute")?;
            session
                .wait_for(Duration::from_secs(10), |s| {
                    s.room.you().is_some_and(|p| !p.muted)
                })
                .await
                .map_err(|_| anyhow!("still muted"))?;
        }
        println!("unmuted");
    }

    // The file starts once media is connected, so its beginning is not lost.
    let go = Arc::new(AtomicBool::new(false));
    let mut device = VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: 0,
        },
        Source::gated(samples, looping, go.clone()),
    );
    let opts = MediaOptions {
        force_send,
        ..MediaOptions::default()
    };
    let agent = key_agent(remote, &session)?;
    let media = MediaSession::start(&session, &mut device, opts)
        .await
        .context("media did not start")?;
    if let Some(agent) = &agent {
        agent.attach(media.e2ee_keys().context("encrypted media")?);
        // Nothing is sent before the first key: start the file once it is there.
        agent
            .wait_for(KEYS_PATIENCE, |s| s.phase == E2eePhase::Member)
            .await
            .map_err(|s| anyhow!("not added to the encrypted room's group ({s:?})"))?;
        if guest_link {
            let summary = authed(remote)?.room(room, None).await?;
            println!("guest link: {}", agent.guest_link(&summary.link));
        }
    } else if guest_link {
        bail!("--guest-link is for encrypted rooms (any room link works in a plain one)");
    }
    go.store(true, Ordering::Release);
    println!("streaming {}", wav.display());
    let outcome = run(&session, run_for).await;
    let stats = media.stats();
    media.stop().await;
    // A moderator stays (disconnected, within the rejoin grace period): if it was the last
    // one, leaving would end the room under its listeners.
    let moderator = session
        .state()
        .room
        .you()
        .is_some_and(|p| p.role == ruang_proto::Role::Moderator);
    if !moderator {
        let _ = session.leave(false).await;
    }
    outcome?;
    if let Some(e) = stats.e2ee {
        println!("encrypted: {} frames sealed", e.frames_encrypted);
    }
    println!(
        "done: {} packets sent ({} frames captured)",
        stats.packets_sent, stats.frames_captured
    );
    Ok(())
}

async fn listen(
    remote: &Remote,
    room: &str,
    link_token: Option<String>,
    record: &std::path::Path,
    secs: f64,
) -> Result<()> {
    let run_for = seconds(secs)?;
    let session = join(remote, room, link_token).await?;
    let capacity = (run_for.as_secs_f64() * f64::from(ruang_media::SAMPLE_RATE)) as usize;
    let mut device = VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            // A little spare: recording starts when the device opens, before media connects.
            record_capacity: capacity + ruang_media::SAMPLE_RATE as usize * 15,
        },
        Source::Silence,
    );
    let opts = MediaOptions {
        capture: false,
        ..MediaOptions::default()
    };
    let agent = key_agent(remote, &session)?;
    let media = MediaSession::start(&session, &mut device, opts)
        .await
        .context("media did not start")?;
    if let Some(agent) = &agent {
        agent.attach(media.e2ee_keys().context("encrypted media")?);
    }
    println!("listening");
    let outcome = run(&session, Some(run_for)).await;
    let stats = media.stats();
    media.stop().await;
    let _ = session.leave(true).await;
    let mut samples = device.take_recording();
    // Keep the last `seconds` of it: the time before media connected is silence anyway.
    if samples.len() > capacity {
        samples.drain(..samples.len() - capacity);
    }
    ruang_media::wav::write_wav(record, &samples)
        .with_context(|| format!("cannot write {}", record.display()))?;
    // The recording is written either way; a session that ended early is still an error.
    outcome?;
    if let Some(e) = stats.e2ee {
        println!(
            "encrypted: {} frames opened, {} dropped",
            e.frames_decrypted, e.frames_dropped
        );
    }
    println!(
        "done: {:.1} s recorded to {} ({} packets received)",
        samples.len() as f64 / f64::from(ruang_media::SAMPLE_RATE),
        record.display(),
        stats.packets_received
    );
    Ok(())
}

/// Runs until the time is up, the room session ends, or Ctrl-C.
async fn run(session: &RoomSession, run_for: Option<Duration>) -> Result<()> {
    let sleep = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let mut state = session.subscribe();
    let end = async {
        let _ = state.wait_for(ended).await;
    };
    tokio::select! {
        _ = sleep => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = end => match session.state().connection {
            ConnectionState::Ended { reason, error } => {
                Err(anyhow!("the room session ended ({reason:?}, {error:?})"))
            }
            _ => Ok(()),
        },
    }
}
