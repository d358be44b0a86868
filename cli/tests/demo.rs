//! `ruang demo` as a newcomer meets it: start the real binary, copy the printed
//! `ruang bot listen` command, run it, and check that the recording holds the demo's
//! conversation (the two bundled voices taking turns). Then stop the demo with SIGTERM.
//!
//! Nothing here measures time: waits have generous upper bounds only.

use ruang_media::analysis::best_alignment;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ruang");
const SR: usize = 48_000;
/// The clips and the pause between turns, exactly as `cli/src/serve.rs` plays them.
const CLIP_A: &[u8] = include_bytes!("../../assets/demo-speaker-a.wav");
const CLIP_B: &[u8] = include_bytes!("../../assets/demo-speaker-b.wav");
const TURN_GAP_MS: usize = 600;
/// Upper bound for a step; never a measured duration.
const PATIENCE: Duration = Duration::from_secs(90);

/// Kills the child if the test fails before stopping it properly.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_with_deadline(child: &mut Child, patience: Duration) -> ExitStatus {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value after `flag` in a command line.
fn flag<'a>(words: &[&'a str], flag: &str) -> &'a str {
    let i = words
        .iter()
        .position(|w| *w == flag)
        .unwrap_or_else(|| panic!("{flag} missing in {words:?}"));
    words
        .get(i + 1)
        .unwrap_or_else(|| panic!("{flag} has no value"))
}

fn rms(x: &[i16]) -> f64 {
    let sum: f64 = x.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum();
    (sum / x.len().max(1) as f64).sqrt()
}

/// 10 ms RMS envelope.
fn envelope(x: &[i16]) -> Vec<f64> {
    x.chunks(SR / 100).map(rms).collect()
}

/// Lag (in envelope steps, 0..=max) maximising the normalised correlation of the
/// mean-removed envelopes: `b[i + lag] ≈ a[i]`.
fn envelope_lag(a: &[f64], b: &[f64], max: usize) -> usize {
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
    let ma = mean(a);
    let mut best = (0, f64::NEG_INFINITY);
    for lag in 0..=max {
        let Some(window) = b.get(lag..lag + a.len()) else {
            break;
        };
        let mb = mean(window);
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (x, y) in a.iter().zip(window) {
            ab += (x - ma) * (y - mb);
            aa += (x - ma).powi(2);
            bb += (y - mb).powi(2);
        }
        let c = if aa > 0.0 && bb > 0.0 {
            ab / (aa * bb).sqrt()
        } else {
            0.0
        };
        if c > best.1 {
            best = (lag, c);
        }
    }
    best.0
}

#[test]
fn demo_room_is_heard_with_the_printed_listen_command() {
    let mut demo = Running(
        Command::new(BIN)
            .args(["demo", "--addr", "127.0.0.1:0"])
            // The default log filter, as a user runs it.
            .env_remove("RUANG_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ruang demo starts"),
    );
    // Read stdout on a thread (and keep draining it), so a stuck demo fails, not hangs.
    let out = demo.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            eprintln!("demo| {line}");
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let listen = loop {
        let line = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("no listen command printed ({e}): {printed:#?}"));
        if line.trim_start().starts_with("ruang bot listen ") {
            break line;
        }
        printed.push(line);
    };
    // The rest of the instructions (sign-up with an invite code, the invite link).
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        printed.push(line.clone());
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("Welcome to Ruang"), "{text}");
    // The WebRTC stacks' chatter (every connection at info, the DTLS server_name warning)
    // does not drown the lines that matter.
    for noise in [
        "rtc::",
        "rtc_ice",
        "rtc_dtls",
        "rtc_srtp",
        "webrtc::",
        "str0m::",
        "server_name",
    ] {
        assert!(
            !text.contains(noise),
            "library log line {noise:?} in:\n{text}"
        );
    }
    assert!(text.contains("/r/"), "a room link: {text}");
    assert!(
        text.contains("Listen in a browser") && text.contains("?listen=1"),
        "the browser link: {text}"
    );
    assert!(
        text.contains("ruang signup --server"),
        "how to sign up: {text}"
    );
    assert!(text.contains("/i/"), "an invite link: {text}");

    // The printed command, as a user would paste it, with a shorter --seconds.
    let words: Vec<&str> = listen.split_whitespace().collect();
    let (server, token, room) = (
        flag(&words, "--server"),
        flag(&words, "--token"),
        flag(&words, "--room"),
    );
    assert_eq!(flag(&words, "--seconds"), "10");
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let mut listener = Running(
        Command::new(BIN)
            .args([
                "bot", "listen", "--server", server, "--token", token, "--room", room,
            ])
            .arg("--record")
            .arg(&wav)
            .args(["--seconds", "6"])
            .env_remove("RUANG_SERVER")
            .env_remove("RUANG_TOKEN")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ruang bot listen starts"),
    );
    let status = wait_with_deadline(&mut listener.0, PATIENCE);
    assert!(status.success(), "bot listen failed: {status}");
    let rec = ruang_media::wav::read_wav(&wav).expect("a recording");
    assert!(rec.len() >= SR * 5, "{} samples", rec.len());

    check_conversation(&rec);

    // SIGTERM stops the demo gracefully.
    let pid = demo.0.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = wait_with_deadline(&mut demo.0, PATIENCE);
    assert!(status.success(), "demo exit after SIGTERM: {status}");
}

/// Does the recording hold the demo conversation?
///
/// The reference is the demo's own schedule: clip A, 600 ms pause, clip B, pause, repeated.
/// The listener joined at an arbitrary point of it, and each voice reaches it through its own
/// path (SFU slot, jitter buffer that may add or drop a 20 ms frame), so:
///
/// 1. a coarse alignment of the whole recording to the schedule by 10 ms loudness envelopes
///    (robust: it only needs the on/off pattern of the turns);
/// 2. every 250 ms chunk of the recording with speech in it (RMS above −40 dBFS) is aligned
///    to the sample within ±250 ms of that, and its normalised correlation taken.
///
/// Criterion: at least 2 s of the 6 s carry speech (the schedule has speech ~85 % of the
/// time), at least 75 % of those chunks correlate ≥ 0.6 with the schedule, and both voices
/// are among them. Opus at 32 kbit/s keeps voiced speech at ≈ 0.9; a negative control (the
/// same schedule time-reversed: same voices, spectrum and loudness, not the same waveform)
/// reached at most 0.35, typically 0.1, at its best lag in the window; the 25 % allowance covers
/// chunks that are mostly fricatives (coded parametrically, low waveform correlation) or
/// where the jitter buffer adapted. A chunk is credited to voice A or B by where in the
/// schedule it aligned, so hearing only one speaker (or the same clip twice) fails.
fn check_conversation(rec: &[i16]) {
    let a = ruang_media::wav::read_wav_reader(CLIP_A).unwrap();
    let b = ruang_media::wav::read_wav_reader(CLIP_B).unwrap();
    let gap = SR * TURN_GAP_MS / 1000;
    let period = a.len() + gap + b.len() + gap;
    let b_start = a.len() + gap;
    let schedule_at = |k: usize| {
        let p = k % period;
        if p < a.len() {
            a[p]
        } else if p >= b_start && p - b_start < b.len() {
            b[p - b_start]
        } else {
            0
        }
    };
    let schedule: Vec<i16> = (0..2 * period + rec.len()).map(schedule_at).collect();

    let step = SR / 100;
    let coarse = envelope_lag(&envelope(rec), &envelope(&schedule), period / step + 1) * step;
    eprintln!(
        "coarse alignment: the recording starts {:.2} s into the cycle",
        coarse as f64 / SR as f64
    );

    let chunk = SR / 4;
    let slack = (SR / 4) as isize;
    let (mut voiced, mut good, mut good_a, mut good_b) = (0, 0, 0, 0);
    let mut report = Vec::new();
    for (i, part) in rec.chunks_exact(chunk).enumerate() {
        let level = rms(part);
        if level < 0.01 {
            report.push(format!("{i}: silent"));
            continue;
        }
        voiced += 1;
        let base = (coarse + i * chunk) as isize;
        let al = best_alignment(part, &schedule, (base - slack).max(0), base + slack);
        // Where in the schedule the middle of the chunk landed.
        let at = al.lag as usize + chunk / 2;
        let voice = if at % period < a.len() + gap / 2 {
            'A'
        } else {
            'B'
        };
        report.push(format!("{i}: {voice} {:.2}", al.correlation));
        if al.correlation >= 0.6 {
            good += 1;
            match voice {
                'A' => good_a += 1,
                _ => good_b += 1,
            }
        }
    }
    eprintln!("chunks: {report:?}");
    assert!(
        voiced >= 8,
        "at least 2 s of speech in 6 s: {voiced} voiced chunks: {report:?}"
    );
    assert!(
        good * 4 >= voiced * 3,
        "≥ 75 % of the voiced chunks correlate ≥ 0.6 with the demo: {good}/{voiced}: {report:?}"
    );
    assert!(
        good_a >= 2 && good_b >= 2,
        "both voices heard (A {good_a}, B {good_b}): {report:?}"
    );
}
