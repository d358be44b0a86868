//! The recorder's cost, measured (not asserted): `cargo test --release -p ruang-server --lib
//! replay::bench -- --ignored --nocapture`. Numbers go to docs/benchmarks.md.

use super::mix;
use super::recorder::{Captured, Task};
use ruang_media::codec::{Encoded, EncoderConfig, OpusEncoder, MAX_PACKET};
use ruang_media::signal::speech_like;
use ruang_media::FRAME_SAMPLES;
use ruang_proto::UserId;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A minute of one speaker's packets as the client sends them (default encoder: 32 kbit/s,
/// FEC, DTX).
fn minute_of_packets(seed: u64) -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(EncoderConfig::default()).unwrap();
    let pcm = speech_like(48_000 * 60, seed);
    let mut buf = vec![0u8; MAX_PACKET];
    pcm.chunks_exact(FRAME_SAMPLES)
        .filter_map(|f| match enc.encode(f, &mut buf).unwrap() {
            Encoded::Packet(n) => Some(buf[..n].to_vec()),
            Encoded::Silence => None,
        })
        .collect()
}

#[test]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
fn recorder_costs() {
    let speakers = 3usize;
    let minutes: Vec<Vec<Vec<u8>>> = (0..speakers)
        .map(|s| minute_of_packets(s as u64 + 1))
        .collect();
    let users: Vec<Arc<UserId>> = (0..speakers)
        .map(|s| Arc::new(UserId(format!("user{s}"))))
        .collect();
    let t0 = Instant::now();
    // The recorder task's work for 3 speakers × 60 s: ring + spool records.
    let mut task = Task::new(0);
    let mut spool = Vec::new();
    let cpu = thread_cpu();
    for k in 0..3000usize {
        for s in 0..speakers {
            let Some(p) = minutes[s].get(k) else { continue };
            task.push(
                Captured {
                    speaker: users[s].clone(),
                    at: t0 + Duration::from_millis(20 * k as u64 + s as u64),
                    rtp: (960 * k) as u32,
                    payload: Arc::from(p.as_slice()),
                },
                true,
                |u| u.to_string(),
            );
        }
        if k % 12 == 11 {
            spool.extend_from_slice(&task.buf); // stands for the file append every 250 ms
            task.buf.clear();
        }
    }
    spool.extend_from_slice(&task.buf);
    let record_cpu = thread_cpu() - cpu;
    let speaker_seconds = (speakers * 60) as f64;
    println!(
        "recorder task: {:.1} µs CPU per recorded speaker-second ({} packets)",
        record_cpu.as_secs_f64() * 1e6 / speaker_seconds,
        minutes.iter().map(Vec::len).sum::<usize>()
    );
    println!(
        "spool: {:.0} KiB per speaker-minute (client packets {:.0} KiB)",
        spool.len() as f64 / 1024.0 / speakers as f64,
        minutes[0].iter().map(Vec::len).sum::<usize>() as f64 / 1024.0
    );
    let parsed = mix::read_spool(&spool);
    for n in [1usize, 3] {
        let one = mix::Spool {
            speakers: parsed.speakers[..n].to_vec(),
            packets: parsed
                .packets
                .iter()
                .filter(|p| (p.speaker as usize) < n)
                .cloned()
                .collect(),
        };
        let cpu = thread_cpu();
        let mixed = mix::mix(&one, "bench").unwrap();
        let took = thread_cpu() - cpu;
        println!(
            "mix of {n} speaker(s): {:.2} s CPU per minute of audio ({} ms audio, {} KiB Ogg)",
            took.as_secs_f64() * 60_000.0 / mixed.duration_ms as f64,
            mixed.duration_ms,
            mixed.ogg.len() / 1024
        );
    }
}
