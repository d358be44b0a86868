//! The media session against a plain `webrtc` peer that answers the offer and reflects the
//! microphone stream back on the first `recvonly` slot: capture → Opus → RTP with the RFC 6464
//! level → network → jitter buffer → decode → mix → playback, all over loopback UDP.

use super::sdp::{self, AUDIO_LEVEL_URI};
use super::*;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use ruang_media::analysis::best_alignment;
use ruang_media::device::{Pacing, Source, VirtualConfig, VirtualDevice};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCSessionDescription,
};

/// What the reflecting peer saw on the microphone m-line.
#[derive(Default)]
struct Seen {
    packets: AtomicU64,
    /// Packets with the audio-level extension and a level louder than silence.
    with_level: AtomicU64,
    level_id: AtomicU8,
    /// The first payloads, as they crossed the network.
    payloads: std::sync::Mutex<Vec<(u8, Vec<u8>)>>,
}

struct Reflector {
    out: Arc<TrackLocalStaticRTP>,
    out_ssrc: u32,
    seen: Arc<Seen>,
    gathered: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Reflector {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let out = self.out.clone();
        let seen = self.seen.clone();
        let out_ssrc = self.out_ssrc;
        tokio::spawn(async move {
            while let Some(ev) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(mut pkt) = ev else {
                    continue;
                };
                seen.packets.fetch_add(1, Ordering::Relaxed);
                {
                    let mut p = seen.payloads.lock().unwrap();
                    if p.len() < 100 {
                        p.push((pkt.header.payload_type, pkt.payload.to_vec()));
                    }
                }
                let id = seen.level_id.load(Ordering::Relaxed);
                let level = pkt.header.get_extension(id);
                if level
                    .as_ref()
                    .and_then(|b| b.first())
                    .is_some_and(|b| b & 0x7f < 127)
                {
                    seen.with_level.fetch_add(1, Ordering::Relaxed);
                }
                pkt.header.ssrc = out_ssrc;
                pkt.header.extensions.clear();
                pkt.header.extension = false;
                if let Some(level) = level {
                    let _ = pkt.header.set_extension(id, level);
                }
                let _ = out.write_rtp(pkt).await;
            }
        });
    }
}

struct Answerer {
    pc: AsyncMutex<Option<Arc<dyn PeerConnection>>>,
    seen: Arc<Seen>,
}

fn local_track(ssrc: u32, name: &str) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "reflector".to_owned(),
        name.to_owned(),
        name.to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: sdp::opus_rtp_codec(),
            active: true,
            ..Default::default()
        }],
    )))
}

#[async_trait::async_trait]
impl Signaller for Answerer {
    async fn media_offer(&self, offer: String) -> Result<String, ClientError> {
        let fail = |e: webrtc::error::Error| ClientError::Protocol(e.to_string());
        sdp::check_offer(&offer, sdp::DEFAULT_SLOTS).map_err(ClientError::Protocol)?;
        self.seen.level_id.store(
            sdp::extmap_id(&offer, AUDIO_LEVEL_URI).expect("offer has the level extension"),
            Ordering::Relaxed,
        );
        let (me, registry) = sdp::media_engine().map_err(fail)?;
        let (gathered_tx, mut gathered) = watch::channel(false);
        // The first added track lands on the microphone m-line (which we only receive on),
        // the second on the first `recvonly` slot: the reflection goes out there.
        let unused = local_track(1111, "unused");
        let out = local_track(2222, "reflection");
        let handler = Arc::new(Reflector {
            out: out.clone(),
            out_ssrc: 2222,
            seen: self.seen.clone(),
            gathered: gathered_tx,
        });
        let pc = PeerConnectionBuilder::new()
            .with_configuration(sdp::configuration(&[]))
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .map_err(fail)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        pc.set_remote_description(RTCSessionDescription::offer(offer).map_err(fail)?)
            .await
            .map_err(fail)?;
        pc.add_track(unused as Arc<dyn TrackLocal>)
            .await
            .map_err(fail)?;
        pc.add_track(out as Arc<dyn TrackLocal>)
            .await
            .map_err(fail)?;
        let answer = pc.create_answer(None).await.map_err(fail)?;
        pc.set_local_description(answer).await.map_err(fail)?;
        let _ = tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g)).await;
        let sdp = pc.local_description().await.expect("answer").sdp;
        *self.pc.lock().await = Some(pc);
        Ok(sdp)
    }
}

pub(crate) use ruang_media::signal::speech_like;

/// A session that sends regardless of the room (there is none), on loopback, connected to
/// the test's plain WebRTC answerer; the device is real-time paced.
async fn start_forcing(source: Source) -> (VirtualDevice, Arc<Answerer>, MediaSession) {
    start_forcing_with(source, |_| {}).await
}

async fn start_forcing_with(
    source: Source,
    options: impl FnOnce(&mut MediaOptions),
) -> (VirtualDevice, Arc<Answerer>, MediaSession) {
    let mut device = VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            ..VirtualConfig::default()
        },
        source,
    );
    let answerer = Arc::new(Answerer {
        pc: AsyncMutex::new(None),
        seen: Arc::new(Seen::default()),
    });
    let mut opts = MediaOptions {
        force_send: true,
        transport: TransportOptions {
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..TransportOptions::default()
        },
        ..MediaOptions::default()
    };
    options(&mut opts);
    let media = MediaSession::start_with(answerer.clone(), &mut device, opts)
        .await
        .expect("media starts and connects");
    (device, answerer, media)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_round_trips_through_a_plain_webrtc_peer() {
    let reference = speech_like(48_000 * 3, 7);
    let go = Arc::new(AtomicBool::new(false));
    let (mut device, answerer, media) =
        start_forcing(Source::gated(reference.clone(), false, go.clone())).await;
    assert_eq!(media.stats().transport_generation, 1);
    go.store(true, Ordering::Release);

    // 3 s of signal = 150 frames; wait until (nearly) all of it has been played back.
    let stats = media
        .wait_for(Duration::from_secs(30), |s| s.frames_with_audio >= 140)
        .await
        .unwrap_or_else(|s| panic!("audio did not come back: {s:#?}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats_end = media.stats();
    media.stop().await;
    let recording = device.take_recording();

    assert!(stats.packets_sent >= 140, "{stats:#?}");
    assert!(stats.packets_received >= 130, "{stats:#?}");
    assert_eq!(stats.slots.len(), 1, "one reflected stream: {stats:#?}");
    let slot = &stats.slots[0];
    assert_eq!(slot.ssrc, 2222);
    assert!(
        slot.rtp_level_packets >= 130,
        "RFC 6464 level forwarded: {slot:?}"
    );
    assert!(slot.rtp_loudest.is_some_and(|l| l < 40), "{slot:?}");
    assert!(stats_end.playout.received >= 130, "{stats_end:#?}");
    // The encoder's loss hint is always reported (the configured value until an RTCP report
    // block on our stream arrives, then the smoothed reported loss, at least 1 %).
    assert!(
        (1..=30).contains(&stats_end.loss_hint_percent),
        "{stats_end:#?}"
    );
    eprintln!(
        "loss hint {} % after {} RTCP report blocks (last reported {} %)",
        stats_end.loss_hint_percent, stats_end.loss_reports, stats_end.reported_loss_percent
    );
    let seen = &answerer.seen;
    assert!(seen.packets.load(Ordering::Relaxed) >= 140);
    assert!(
        seen.with_level.load(Ordering::Relaxed) >= 140,
        "every voiced packet carries the audio level"
    );

    // Chunk by chunk: the jitter buffer may drop or insert a 20 ms frame to adjust its
    // delay, which shifts everything after it, so each 250 ms chunk is aligned on its own
    // (within ±60 ms of the overall delay).
    let a = best_alignment(&reference, &recording, 0, 48_000);
    let chunk = 12_000;
    let mut good = 0;
    let mut total = 0;
    for c in (24_000..reference.len().saturating_sub(chunk)).step_by(chunk) {
        let lag = c as isize + a.lag;
        let m = best_alignment(
            &reference[c..c + chunk],
            &recording,
            (lag - 2_880).max(0),
            lag + 2_880,
        );
        total += 1;
        if m.correlation >= 0.9 {
            good += 1;
        }
    }
    assert!(
        total >= 8 && good * 10 >= total * 8,
        "reflected audio matches the input: {good}/{total} chunks ≥ 0.9 (overall {a:?}, {} samples recorded)",
        recording.len()
    );
    let pc = answerer.pc.lock().await.take();
    if let Some(pc) = pc {
        let _ = pc.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mute_stops_packets_immediately() {
    let (_device, answerer, media) = start_forcing(Source::sine(300.0, 0.3)).await;
    media
        .wait_for(Duration::from_secs(20), |s| s.packets_sent >= 10)
        .await
        .expect("sending");
    media.set_muted(true);
    assert!(media.is_muted());
    let muted_at = media.stats().packets_sent;
    let later = media
        .wait_for(Duration::from_secs(20), |s| {
            s.frames_captured >= 50 + s.packets_sent && !s.send_allowed
        })
        .await
        .expect("capture continues while muted");
    // At most the packet already in flight when the flag flipped.
    assert!(later.packets_sent <= muted_at + 1, "{later:#?}");
    media.set_muted(false);
    media
        .wait_for(Duration::from_secs(20), |s| {
            s.packets_sent >= later.packets_sent + 10
        })
        .await
        .expect("sending again after unmute");
    media.stop().await;
    let pc = answerer.pc.lock().await.take();
    if let Some(pc) = pc {
        let _ = pc.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_has_one_sendonly_and_four_recvonly_opus_lines() {
    let (tx, _rx) = mpsc::channel(8);
    let t = Transport::new(
        &TransportOptions {
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..TransportOptions::default()
        },
        1,
        tx,
    )
    .await
    .unwrap();
    let offer = t.create_offer().await.unwrap();
    sdp::check_offer(&offer, 4).unwrap_or_else(|e| panic!("{e}\n{offer}"));
    let lines = sdp::mlines(&offer);
    assert!(lines.iter().all(|l| l.mid.is_some()));
    assert!(lines[0].ssrcs.contains(&t.ssrc()), "{offer}");
    assert!(
        lines[0].candidates >= 1,
        "candidates gathered before the offer: {offer}"
    );
    assert!(offer.contains("a=rtpmap:111 opus/48000/2"), "{offer}");
    assert!(
        offer.contains("a=fmtp:111 minptime=10;useinbandfec=1"),
        "{offer}"
    );
    assert!(offer.contains("a=rtcp-fb:111 nack"), "{offer}");
    assert!(sdp::extmap_id(&offer, sdp::MID_URI).is_some(), "{offer}");
    assert!(!offer.contains("video"), "{offer}");
    t.close().await;
}

/// Counts 250 ms chunks of `reference` found in `recording` (each aligned on its own near the
/// overall delay) with a correlation of at least 0.9: `(good, total)`.
fn matching_chunks(reference: &[i16], recording: &[i16], from: usize) -> (usize, usize) {
    let a = best_alignment(reference, recording, 0, 48_000);
    let chunk = 12_000;
    let (mut good, mut total) = (0, 0);
    for c in (from..reference.len().saturating_sub(chunk)).step_by(chunk) {
        let lag = c as isize + a.lag;
        let m = best_alignment(
            &reference[c..c + chunk],
            recording,
            (lag - 2_880).max(0),
            lag + 2_880,
        );
        total += 1;
        if m.correlation >= 0.9 {
            good += 1;
        }
    }
    (good, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_session_sends_only_sframe_ciphertext_and_plays_it_back() {
    // The key of a real MLS group (one device: the reflector hands our frames back).
    let device = ruang_e2ee::Device::new("maya").unwrap();
    let group = ruang_e2ee::RoomGroup::create(&device, "room").unwrap();
    let key = group.epoch_key(&device).unwrap();

    let reference = speech_like(48_000 * 4, 11);
    let go = Arc::new(AtomicBool::new(false));
    let (mut dev, answerer, media) =
        start_forcing_with(Source::gated(reference.clone(), false, go.clone()), |o| {
            o.e2ee = true
        })
        .await;
    go.store(true, Ordering::Release);

    // No key yet: frames are captured and encoded, nothing leaves.
    let unkeyed = media
        .wait_for(Duration::from_secs(20), |s| {
            s.e2ee.is_some_and(|e| e.frames_unkeyed >= 10)
        })
        .await
        .unwrap_or_else(|s| panic!("frames held back without a key: {s:#?}"));
    assert_eq!(unkeyed.packets_sent, 0, "{unkeyed:#?}");
    assert_eq!(answerer.seen.packets.load(Ordering::Relaxed), 0);

    assert!(media.set_e2ee_key(key));
    let stats = media
        .wait_for(Duration::from_secs(30), |s| s.frames_with_audio >= 175)
        .await
        .unwrap_or_else(|s| panic!("encrypted audio did not come back: {s:#?}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    media.stop().await;
    let recording = dev.take_recording();
    let e = stats.e2ee.expect("counters");
    assert_eq!(e.epoch, Some(group.epoch()));
    assert!(
        e.frames_encrypted >= 120 && e.frames_decrypted >= 110,
        "{e:?}"
    );
    assert_eq!(e.frames_dropped, 0, "{e:?}");

    // What crossed the network: SFrame ciphertext that opens with the group's key into an
    // Opus frame, and that is not that frame.
    let payloads = answerer.seen.payloads.lock().unwrap().clone();
    assert!(payloads.len() >= 50);
    let mut check = ruang_e2ee::MediaCrypto::new();
    check.install(&group, &device).unwrap();
    let mut decoder = ruang_media::OpusDecoder::new().unwrap();
    let mut pcm = vec![0i16; ruang_media::FRAME_SAMPLES];
    let mut opened = 0;
    for (pt, payload) in &payloads {
        if *pt != sdp::OPUS_PAYLOAD_TYPE {
            continue; // RED: its blocks are ciphertexts too, checked by the playback above
        }
        let mut frame = Vec::new();
        check
            .decrypt(payload, &mut frame)
            .expect("an SFrame ciphertext of the group's key");
        assert_ne!(&frame, payload);
        assert!(!payload.windows(frame.len()).any(|w| w == frame.as_slice()));
        decoder
            .decode(&frame, &mut pcm)
            .expect("the plaintext is Opus");
        opened += 1;
    }
    assert!(opened >= 50 || payloads.iter().any(|(pt, _)| *pt != sdp::OPUS_PAYLOAD_TYPE));

    // And the audio is the microphone's (the first second was held back without a key).
    let (good, total) = matching_chunks(&reference, &recording, 96_000);
    assert!(
        total >= 6 && good * 10 >= total * 7,
        "decrypted audio matches the input: {good}/{total} chunks"
    );
    let pc = answerer.pc.lock().await.take();
    if let Some(pc) = pc {
        let _ = pc.close().await;
    }
}
