use super::*;
use crate::analysis::best_alignment;
use crate::codec::EncoderConfig;
use crate::jitter::{PushOutcome, RtpPacket};
use crate::testutil::{alloc_count, sine, speech_like, Rng};
use crate::FRAME_SAMPLES;

/// A packet on the simulated network.
struct InFlight {
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
    arrival: u64,
}

/// Runs `input` through send → lossy, jittery network → receive. Returns the received audio
/// and the number of packets sent.
fn round_trip(
    input: &[i16],
    loss: f32,
    jitter_ms: f32,
    seed: u64,
) -> (Vec<i16>, u64, SpeakerState) {
    let mut send = SendPipeline::new(SendConfig {
        initial_seq: 65_000,
        initial_ts: 4_000_000_000,
        ..SendConfig::default()
    })
    .unwrap();
    let mut recv = ReceivePipeline::default();
    let mut rng = Rng::new(seed);
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut output = Vec::with_capacity(input.len() + 20 * FRAME_SAMPLES);
    let mut out = [0i16; FRAME_SAMPLES];
    let frames = input.len() / FRAME_SAMPLES;
    let speaker = SpeakerId(7);
    for k in 0..frames + 20 {
        let now = k as u64 * 20;
        if k < frames {
            let frame = &input[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES];
            if let Some(p) = send.process(frame).unwrap() {
                if !rng.chance(loss) {
                    in_flight.push(InFlight {
                        seq: p.seq,
                        ts: p.ts,
                        payload: p.payload.to_vec(),
                        arrival: now + 5 + (rng.next_f32() * jitter_ms) as u64,
                    });
                }
            }
        }
        // Playout ticks at a 10 ms phase offset from capture.
        let tick = now + 10;
        in_flight.sort_by_key(|p| p.arrival);
        while in_flight.first().is_some_and(|p| p.arrival <= tick) {
            let p = in_flight.remove(0);
            let packet = RtpPacket {
                seq: p.seq,
                ts: p.ts,
                payload: &p.payload,
                arrival_ms: p.arrival,
            };
            recv.push(speaker, packet).unwrap();
        }
        recv.pull(tick, &mut out);
        output.extend_from_slice(&out);
    }
    let state = recv.speaker(speaker).unwrap();
    (output, send.stats().packets, state)
}

#[test]
fn round_trip_with_5_percent_loss_keeps_99_percent() {
    let input = speech_like(FRAME_SAMPLES * 1_500, 21);
    let (output, sent, state) = round_trip(&input, 0.05, 10.0, 42);
    assert_eq!(sent, 1_500);
    let j = state.jitter;
    let good = j.received + j.recovered;
    assert!(
        good * 100 >= sent * 99,
        "only {good} of {sent} frames received or recovered: {j:?}"
    );
    // The network really lost ~5 %, and FEC data was there for most recoveries.
    assert!(j.recovered >= 40, "{j:?}");
    assert!(state.fec_recovered * 10 >= j.recovered * 7, "{state:?}");
    assert_eq!(state.decode_errors, 0);

    // The output contains the input: align each second separately, since the buffer may
    // have shifted playout by whole frames while adapting.
    let second = 48_000;
    let mut good_windows = 0;
    let windows = input.len() / second - 1;
    for w in 0..windows {
        let reference = &input[w * second..(w + 1) * second];
        let a = best_alignment(reference, &output[w * second..], 0, 9_600);
        if a.correlation >= 0.9 {
            good_windows += 1;
        }
    }
    assert!(
        good_windows * 10 >= windows * 8,
        "{good_windows} of {windows} seconds correlate ≥ 0.9"
    );
}

#[test]
fn clean_round_trip_correlates_fully() {
    let input = speech_like(FRAME_SAMPLES * 200, 22);
    let (output, sent, state) = round_trip(&input, 0.0, 0.0, 1);
    assert_eq!(state.jitter.received + state.jitter.discarded, sent);
    // Skip the first second, in which the buffer settles from its initial 40 ms target.
    let a = best_alignment(&input[48_000..144_000], &output[48_000..], 0, 9_600);
    assert!(a.correlation >= 0.9, "{a:?}");
    // Delay through codec and buffer (in samples, not wall-clock time): the Opus look-ahead
    // plus at most a couple of frames.
    assert!(a.lag_ms() <= 50.0, "{a:?}");
}

#[test]
fn mute_sends_nothing_but_still_meters() {
    let mut send = SendPipeline::new(SendConfig::default()).unwrap();
    let speech = sine(200.0, 0.3, FRAME_SAMPLES);
    let first = send.process(&speech).unwrap().unwrap();
    assert!(first.marker);
    assert!(first.voice);
    let (seq0, ts0) = (first.seq, first.ts);
    assert!(!send.process(&speech).unwrap().unwrap().marker);
    send.set_muted(true);
    assert!(send.is_muted());
    for _ in 0..10 {
        assert!(send.process(&speech).unwrap().is_none());
    }
    assert!(send.voice_active());
    assert_eq!(send.level().rfc6464, 13);
    send.set_muted(false);
    let p = send.process(&speech).unwrap().unwrap();
    // Sequence numbers continue, the timestamp accounts for the muted time.
    assert_eq!(p.seq, seq0.wrapping_add(2));
    assert_eq!(p.ts, ts0.wrapping_add(12 * 960));
    assert!(p.marker);
    let s = send.stats();
    assert_eq!((s.frames, s.packets, s.muted_frames), (13, 3, 10));
    assert!(send.process(&speech[..100]).is_err());
}

#[test]
fn dtx_silence_is_not_sent() {
    let mut send = SendPipeline::new(SendConfig::default()).unwrap();
    let silence = [0i16; FRAME_SAMPLES];
    let sent = (0..100)
        .filter(|_| send.process(&silence).unwrap().is_some())
        .count();
    assert!(sent <= 30, "{sent} silent frames sent");
    assert!(send.stats().dtx_frames >= 70);
    let speech = speech_like(FRAME_SAMPLES * 20, 5);
    let p = send.process(&speech[9_600..10_560]).unwrap().unwrap();
    assert_eq!(p.ts, 100 * 960);
    assert!(p.marker);
    send.encoder_mut().set_packet_loss_perc(20).unwrap();
}

/// Encodes `signal` into packets of one speaker without loss.
fn packets_of(signal: &[i16]) -> Vec<Vec<u8>> {
    let mut send = SendPipeline::new(SendConfig {
        encoder: EncoderConfig {
            dtx: false,
            ..EncoderConfig::default()
        },
        ..SendConfig::default()
    })
    .unwrap();
    signal
        .chunks(FRAME_SAMPLES)
        .map(|f| send.process(f).unwrap().unwrap().payload.to_vec())
        .collect()
}

#[test]
fn two_speakers_are_mixed_with_their_own_levels() {
    let loud = speech_like(FRAME_SAMPLES * 50, 31);
    let quiet: Vec<i16> = speech_like(FRAME_SAMPLES * 50, 32)
        .iter()
        .map(|&s| s / 100)
        .collect();
    let (pa, pb) = (packets_of(&loud), packets_of(&quiet));
    let mut recv = ReceivePipeline::default();
    let mut out = [0i16; FRAME_SAMPLES];
    let mut mixed = Vec::new();
    let mut max_sources = 0;
    for k in 0..50 {
        let now = k as u64 * 20;
        for (id, packets) in [(1, &pa), (2, &pb)] {
            let p = RtpPacket {
                seq: k as u16,
                ts: k as u32 * 960,
                payload: &packets[k],
                arrival_ms: now,
            };
            assert_eq!(recv.push(SpeakerId(id), p).unwrap(), PushOutcome::Stored);
        }
        max_sources = max_sources.max(recv.pull(now + 10, &mut out).sources);
        mixed.extend_from_slice(&out);
    }
    assert_eq!(max_sources, 2);
    let a = recv.speaker(SpeakerId(1)).unwrap();
    let b = recv.speaker(SpeakerId(2)).unwrap();
    assert!(a.voice_active && a.playing);
    assert!(!b.voice_active);
    // 1/100 amplitude is 40 dB quieter.
    assert!(
        b.level.rfc6464 >= a.level.rfc6464 + 30,
        "{:?} {:?}",
        a.level,
        b.level
    );
    assert_eq!(recv.speakers().count(), 2);
    assert_eq!(recv.limiter_gain(), 1.0);
    // The mix is dominated by the loud speaker (checked after the buffer settled).
    let al = best_alignment(&loud[28_800..48_000], &mixed[28_800..], 0, 4_800);
    assert!(al.correlation > 0.9, "{al:?}");

    assert!(recv.remove_speaker(SpeakerId(2)));
    assert!(!recv.remove_speaker(SpeakerId(2)));
    assert!(recv.speaker(SpeakerId(2)).is_none());
}

#[test]
fn speaker_limit_and_bad_packets() {
    let mut recv = ReceivePipeline::new(ReceiveConfig {
        max_speakers: 1,
        ..ReceiveConfig::default()
    });
    let good = packets_of(&speech_like(FRAME_SAMPLES * 10, 3));
    let p = |seq: u16, payload: &'static [u8]| RtpPacket {
        seq,
        ts: u32::from(seq) * 960,
        payload,
        arrival_ms: u64::from(seq) * 20,
    };
    // A malformed Opus packet (code 3 with zero frames) is concealed, not fatal.
    let bad: &'static [u8] = &[0x03, 0x00, 0x01];
    recv.push(SpeakerId(1), p(0, bad)).unwrap();
    let good0: &'static [u8] = good[1].clone().leak();
    recv.push(SpeakerId(1), p(1, good0)).unwrap();
    assert!(matches!(
        recv.push(SpeakerId(2), p(0, bad)),
        Err(ReceiveError::TooManySpeakers(1))
    ));
    let mut out = [0i16; FRAME_SAMPLES];
    assert_eq!(recv.pull(40, &mut out).sources, 1);
    assert_eq!(recv.pull(60, &mut out).sources, 1);
    let s = recv.speaker(SpeakerId(1)).unwrap();
    assert_eq!(s.decode_errors, 1);
    assert_eq!(s.jitter.received, 2);
}

#[test]
fn steady_state_pipelines_do_not_allocate() {
    let input = speech_like(FRAME_SAMPLES * 200, 9);
    let mut send = SendPipeline::new(SendConfig::default()).unwrap();
    let mut recv = ReceivePipeline::default();
    let mut out = [0i16; FRAME_SAMPLES];
    let mut step = |k: usize, send: &mut SendPipeline, recv: &mut ReceivePipeline| {
        let frame = &input[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES];
        let now = k as u64 * 20;
        if let Some(p) = send.process(frame).unwrap() {
            let packet = RtpPacket {
                seq: p.seq,
                ts: p.ts,
                payload: p.payload,
                arrival_ms: now + 3,
            };
            recv.push(SpeakerId(1), packet).unwrap();
        }
        recv.pull(now + 10, &mut out);
    };
    for k in 0..50 {
        step(k, &mut send, &mut recv);
    }
    let before = alloc_count::allocations();
    for k in 50..200 {
        step(k, &mut send, &mut recv);
    }
    assert_eq!(alloc_count::allocations(), before);
}

/// Speaker → network (2 ms) → receive pipeline → a 10 ms-target playout queue drained by a
/// device sample by sample, the engine checking it every 5 ms: the client's playout loop on
/// one simulated millisecond clock. Returns what the device played and the pipeline.
fn playout_loop(input: &[i16], trim: bool, engine_phase_ms: u64) -> (Vec<i16>, ReceivePipeline) {
    let mut send = SendPipeline::new(SendConfig::default()).unwrap();
    let mut recv = ReceivePipeline::new(ReceiveConfig {
        trim,
        ..ReceiveConfig::default()
    });
    let mut queue = std::collections::VecDeque::new();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut played = Vec::with_capacity(input.len());
    let mut out = [0i16; MAX_ADJUSTED_SAMPLES];
    let speaker = SpeakerId(3);
    let total_ms = (input.len() / 48) as u64;
    for t in 0..total_ms {
        // A frame is sent when its last sample has been captured.
        if t % 20 == 0 && t > 0 {
            let k = (t / 20 - 1) as usize;
            let frame = &input[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES];
            if let Some(p) = send.process(frame).unwrap() {
                in_flight.push(InFlight {
                    seq: p.seq,
                    ts: p.ts,
                    payload: p.payload.to_vec(),
                    arrival: t + 2,
                });
            }
        }
        if t % 5 == engine_phase_ms {
            for p in in_flight.iter().filter(|p| p.arrival <= t) {
                let packet = RtpPacket {
                    seq: p.seq,
                    ts: p.ts,
                    payload: &p.payload,
                    arrival_ms: t,
                };
                recv.push(speaker, packet).unwrap();
            }
            in_flight.retain(|p| p.arrival > t);
            while queue.len() < 480 {
                recv.pull(t, &mut out[..FRAME_SAMPLES]);
                let len = recv.trim(&mut out);
                queue.extend(&out[..len]);
            }
        }
        for _ in 0..48 {
            played.push(queue.pop_front().unwrap_or(0));
        }
    }
    (played, recv)
}

#[test]
fn trim_plays_earlier_when_packets_wait_and_keeps_the_audio() {
    // Speech with a 100 ms pause (too short for DTX) every second: trims and level
    // corrections happen in those, never inside speech.
    let mut input = speech_like(48_000 * 8, 31);
    for (i, s) in input.iter_mut().enumerate() {
        if i % 48_000 >= 43_200 {
            *s = 0;
        }
    }
    let tail = 48_000 * 5..48_000 * 7;
    let mut total_trims = 0;
    for phase in 0..5 {
        let (plain, plain_recv) = playout_loop(&input, false, phase);
        let (trimmed, recv) = playout_loop(&input, true, phase);
        let before = best_alignment(&input[tail.clone()], &plain[tail.start..], 0, 9_600);
        let after = best_alignment(&input[tail.clone()], &trimmed[tail.start..], 0, 9_600);
        assert_eq!(plain_recv.trims(), 0);
        assert!(before.correlation >= 0.9, "phase {phase}: {before:?}");
        assert!(after.correlation >= 0.9, "phase {phase}: {after:?}");
        let j = recv.speaker(SpeakerId(3)).unwrap().jitter;
        assert_eq!(j.concealed + j.underruns + j.recovered, 0, "{j:?}");
        // Whatever the phase, the trimmed playout leaves less than one trim of slack...
        let slack = recv.playout_slack_ms().unwrap();
        assert!(
            slack < TRIM_MS + TRIM_MARGIN_MS,
            "phase {phase}: slack {slack}"
        );
        // ...and plays 5–15 ms earlier per trim.
        let gained = before.lag as i64 - after.lag as i64;
        let trims = recv.trims() as i64;
        assert!(
            (trims * 240..=trims * 720).contains(&gained),
            "phase {phase}: {trims} trims, {before:?} {after:?}"
        );
        eprintln!(
            "phase {phase}: {:.1} ms → {:.1} ms, {} trims",
            before.lag_ms(),
            after.lag_ms(),
            recv.trims()
        );
        total_trims += recv.trims();
    }
    // Three of the five engine phases leave 15 ms or more of slack without trimming.
    assert!(total_trims >= 3, "{total_trims} trims");
}

#[test]
fn trims_inside_speech_wait_long_and_only_cut_periodic_frames() {
    // Loud and not periodic (noise): slack builds up as in the test above, but there is no
    // quiet frame and nothing a pitch-synchronous cut could hide in: never shortened.
    let mut rng = Rng::new(9);
    let noise: Vec<i16> = (0..48_000 * 6)
        .map(|_| ((rng.next_f32() - 0.5) * 16_000.0) as i16)
        .collect();
    // A loud tone: perfectly periodic, but shorter than the wait for a quiet frame.
    let tone = |secs: usize| -> Vec<i16> {
        (0..48_000 * secs)
            .map(|i| {
                (8_000.0 * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / 48_000.0).sin()) as i16
            })
            .collect()
    };
    for phase in 0..5 {
        for input in [&noise, &tone(3)] {
            let (_, recv) = playout_loop(input, true, phase);
            assert_eq!(recv.trims(), 0, "phase {phase}");
            let j = recv.speaker(SpeakerId(3)).unwrap().jitter;
            assert_eq!(j.discarded + j.expanded, 0, "phase {phase}: {j:?}");
        }
    }
    // A long tone: after the wait, whole periods are cut (accelerate), keeping the phase.
    let long = tone(8);
    let mut accelerated = 0;
    for phase in 0..5 {
        let (played, recv) = playout_loop(&long, true, phase);
        assert_eq!(recv.trims(), recv.accelerates(), "phase {phase}");
        accelerated += recv.accelerates();
        let tail = 48_000 * 6..48_000 * 7;
        let a = best_alignment(&long[tail.clone()], &played[tail.start..], 0, 9_600);
        assert!(a.correlation >= 0.99, "phase {phase}: {a:?}");
    }
    assert!(
        accelerated >= 1,
        "a long loud stretch is shortened eventually"
    );
}

#[test]
fn shortening_a_tone_keeps_its_phase() {
    // 440 Hz: a period of 109.09 samples. Three frames of a continuous tone, the middle one
    // shortened: the result must still be one clean tone (no phase jump at either joint).
    let tone = |i: usize| {
        (8_000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 48_000.0).sin()) as i16
    };
    let mut frame: Vec<i16> = (960..1_920).map(tone).collect();
    let len = shorten_frame(&mut frame, 480);
    let cut = 960 - len;
    assert!((240..=480).contains(&cut), "{cut}");
    // The cut is a whole number of periods (436.4 = 4 periods), to the sample.
    let periods = cut as f64 / (48_000.0 / 440.0);
    assert!(
        (periods - periods.round()).abs() * 109.09 <= 1.0,
        "cut {cut} = {periods} periods"
    );
    // Before it the tone up to sample 959; after it the tone from sample 1 920 on: the
    // joints must be as smooth as the tone itself.
    let mut joined: Vec<i16> = (0..960).map(tone).collect();
    joined.extend_from_slice(&frame[..len]);
    joined.extend((1_920..2_880).map(tone));
    let max_step = joined
        .windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap();
    let tone_step = (8_000.0 * 2.0 * std::f64::consts::PI * 440.0 / 48_000.0) as i32 + 2;
    assert!(
        max_step <= tone_step + 8,
        "a click: step {max_step} > {tone_step}"
    );

    // A naive cut of exactly 10 ms (4.4 periods) would jump by 0.4 period at the joint.
    let naive_jump = (i32::from(tone(1_440)) - i32::from(tone(959))).abs();
    assert!(naive_jump > tone_step * 3, "{naive_jump}");

    // Silence: the longest cut.
    let mut quiet = vec![0i16; 960];
    assert_eq!(shorten_frame(&mut quiet, 480), 480);
    // The cut stays within 5 ms and the limit given (and 15 ms).
    let mut quiet = vec![0i16; 960];
    assert_eq!(shorten_frame(&mut quiet, 0), 720);
    let mut quiet = vec![0i16; 960];
    assert_eq!(shorten_frame(&mut quiet, 5_000), 240);
}

/// 20 % random loss with RED depth 2 (each packet carries the two frames before it): almost
/// every frame plays from real data, most of the lost ones from a later packet's copy, and
/// the same stream without RED loses far more; the output carries the input.
#[test]
fn red_at_20_percent_loss_rebuilds_lost_frames_from_later_packets() {
    use crate::red::RedEncoder;
    let input = speech_like(FRAME_SAMPLES * 1_000, 5);
    let run = |redundancy: usize| {
        let mut send = SendPipeline::new(SendConfig {
            initial_seq: 65_500,
            ..SendConfig::default()
        })
        .unwrap();
        let mut red = RedEncoder::new(111);
        let mut buf = [0u8; 4000];
        let mut recv = ReceivePipeline::default();
        let mut rng = Rng::new(99);
        let mut in_flight: Vec<InFlight> = Vec::new();
        let mut output = Vec::with_capacity(input.len() + 20 * FRAME_SAMPLES);
        let mut out = [0i16; FRAME_SAMPLES];
        let frames = input.len() / FRAME_SAMPLES;
        let mut lost = 0;
        for k in 0..frames + 20 {
            let now = k as u64 * 20;
            if k < frames {
                let frame = &input[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES];
                if let Some(p) = send.process(frame).unwrap() {
                    let n = red
                        .encode(p.seq, p.ts, p.payload, redundancy, &mut buf)
                        .unwrap();
                    if rng.chance(0.2) {
                        lost += 1;
                    } else {
                        in_flight.push(InFlight {
                            seq: p.seq,
                            ts: p.ts,
                            payload: buf[..n].to_vec(),
                            arrival: now + 5,
                        });
                    }
                }
            }
            let tick = now + 10;
            while in_flight.first().is_some_and(|p| p.arrival <= tick) {
                let p = in_flight.remove(0);
                let packet = RtpPacket {
                    seq: p.seq,
                    ts: p.ts,
                    payload: &p.payload,
                    arrival_ms: p.arrival,
                };
                recv.push_red(SpeakerId(1), packet).unwrap();
            }
            recv.pull(tick, &mut out);
            output.extend_from_slice(&out);
        }
        (output, lost, recv.speaker(SpeakerId(1)).unwrap().jitter)
    };
    let (output, lost, j) = run(2);
    assert!(lost >= 150, "the network lost {lost} of 1000");
    assert_eq!(j.invalid, 0, "{j:?}");
    let real = j.received + j.redundant;
    assert!(
        real >= 970,
        "only {real} of 1000 frames from real data: {j:?}"
    );
    assert!(j.redundant * 10 >= lost * 8, "{lost} lost, {j:?}");
    let (_, lost0, j0) = run(0);
    assert_eq!(lost0, lost, "same losses");
    assert_eq!(j0.redundant, 0);
    assert!(j0.received + j0.redundant + 100 < real, "{j0:?} vs {j:?}");
    // The output carries the input (one alignment over the middle 5 s).
    let mid = 48_000 * 8;
    let a = best_alignment(&input[mid..mid + 48_000 * 5], &output[mid..], 0, 9_600);
    assert!(a.correlation >= 0.9, "{a:?}");
}

/// Malformed RED payloads (cut headers, block lengths past the end, too many blocks) count as
/// invalid packets and change nothing else; the stream around them plays on.
#[test]
fn malformed_red_is_refused_and_the_stream_plays_on() {
    use crate::red::RedEncoder;
    let mut send = SendPipeline::new(SendConfig::default()).unwrap();
    let mut red = RedEncoder::new(111);
    let mut recv = ReceivePipeline::default();
    let mut buf = [0u8; 4000];
    let mut out = [0i16; FRAME_SAMPLES];
    let input = speech_like(FRAME_SAMPLES * 60, 8);
    let speaker = SpeakerId(3);
    let garbage: [&[u8]; 4] = [
        &[],
        &[0x80 | 111, 0, 1],
        &[0x80 | 111, 0, 0x13, 0xff, 111, 1, 2],
        &[0xff; 64],
    ];
    let mut bad = 0;
    for k in 0..60 {
        let frame = &input[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES];
        let p = send.process(frame).unwrap().unwrap();
        let n = red.encode(p.seq, p.ts, p.payload, 2, &mut buf).unwrap();
        let now = k as u64 * 20;
        if k % 10 == 5 {
            // A malformed packet with a fresh sequence number in place of this frame.
            let g = garbage[bad % garbage.len()];
            bad += 1;
            let outcome = recv
                .push_red(
                    speaker,
                    RtpPacket {
                        seq: p.seq,
                        ts: p.ts,
                        payload: g,
                        arrival_ms: now,
                    },
                )
                .unwrap();
            assert_eq!(outcome, PushOutcome::Invalid, "garbage {g:?}");
        } else {
            let packet = RtpPacket {
                seq: p.seq,
                ts: p.ts,
                payload: &buf[..n],
                arrival_ms: now,
            };
            recv.push_red(speaker, packet).unwrap();
        }
        recv.pull(now + 10, &mut out);
    }
    let j = recv.speaker(speaker).unwrap().jitter;
    assert_eq!(j.invalid, bad as u64, "{j:?}");
    // The frames the garbage stood in for came back from the next packet's copies.
    assert!(j.redundant >= bad as u64 - 1, "{j:?}");
    assert_eq!(j.concealed, 0, "{j:?}");
}
