//! A recorded room from the command line: `ruang room create --record`, a bot speaks a known
//! WAV while a modified listener client sends a tone anyway, `ruang clip`, `ruang room end`,
//! then `ruang replay ROOM --out FILE.ogg` (an error while live), whose audio is the WAV's and
//! never the listener's, with a chapter for the speaker; `ruang replay delete`.

mod common;

use common::{free_port, ok, ruang, Serve, RUANG};
use ruang_server::replay::mix::decode_ogg_opus;
use ruang_tests::replay::{chunk_correlations, envelope, locate, pearson, tone_share};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SR: usize = 48_000;
const SPEAKER_WAV: &[u8] = include_bytes!("../../assets/demo-speaker-a.wav");

#[test]
fn recorded_room_replay_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let serve = Serve::start(data.path(), port, &[]);
    let code = serve.first_invite();
    let none = "";
    let maya = ok(ruang(
        &server,
        none,
        &[
            "signup", "--invite", &code, "--handle", "maya", "--name", "Maya",
        ],
    ));
    let codes = ok(ruang(&server, &maya, &["invites"]));
    let budi = ok(ruang(
        &server,
        none,
        &[
            "signup",
            "--invite",
            codes.lines().next().unwrap(),
            "--handle",
            "budi",
        ],
    ));
    let room = ok(ruang(
        &server,
        &maya,
        &["room", "create", "--title", "Recorded", "--record"],
    ));

    // Live: no replay yet, a clear error.
    let early = ruang(&server, &maya, &["replay", &room, "--out", "/dev/null"]);
    assert!(!early.status.success());
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(err.contains("replay_not_ready"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speaker.wav");
    std::fs::write(&wav, SPEAKER_WAV).unwrap();
    let reference = ruang_media::wav::read_wav(&wav).unwrap();
    let tone = dir.path().join("tone.wav");
    let sine: Vec<i16> = (0..SR * 8)
        .map(|i| {
            (9000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / SR as f64).sin()) as i16
        })
        .collect();
    ruang_media::wav::write_wav(&tone, &sine).unwrap();

    // Budi, a listener whose client sends a 1 kHz tone without being on stage.
    let sneaky = Command::new(RUANG)
        .args(["bot", "speak", "--room", &room, "--wav"])
        .arg(&tone)
        .args(["--force-send", "--seconds", "8"])
        .env("RUANG_SERVER", &server)
        .env("RUANG_TOKEN", &budi)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Maya, the host, speaks the WAV.
    let speak = ruang(
        &server,
        &maya,
        &[
            "bot",
            "speak",
            "--room",
            &room,
            "--wav",
            wav.to_str().unwrap(),
        ],
    );
    let said = ok(&speak);
    assert!(said.contains("streaming"), "{said}");
    // The last 30 s, clipped from the command line.
    let link = ok(ruang(&server, &maya, &["clip", &room]));
    assert!(link.starts_with(&format!("{server}/c/")), "{link}");
    let mut sneaky = sneaky;
    let _ = sneaky.wait();

    assert!(ok(ruang(&server, &maya, &["room", "end", &room])).contains("ended"));
    let out = dir.path().join("replay.ogg");
    let deadline = Instant::now() + Duration::from_secs(40);
    let listing = loop {
        let r = ruang(
            &server,
            &maya,
            &["replay", &room, "--out", out.to_str().unwrap()],
        );
        if r.status.success() {
            break String::from_utf8(r.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(listing.contains("chapter\t"), "{listing}");
    assert!(!dir.path().join(".replay.ogg.part").exists());

    let bytes = std::fs::read(&out).unwrap();
    let (pcm, tags) = decode_ogg_opus(&bytes).expect("the replay is Ogg Opus");
    assert!(tags.iter().any(|t| t == "CHAPTER001NAME=Maya"), "{tags:?}");
    assert!(!tags.iter().any(|t| t.contains("budi")), "{tags:?}");
    let (at, env) = locate(&reference, &pcm);
    let n = envelope(&reference).len();
    let env_here = envelope(&pcm[at.max(0) as usize..]);
    let env_corr = pearson(&envelope(&reference), &env_here[..n.min(env_here.len())]);
    let chunks = chunk_correlations(&reference, &pcm, at);
    eprintln!("replay at {at}: envelope {env:.3} / {env_corr:.3}, chunks {chunks:.2?}");
    assert!(env_corr > 0.9, "the replay's loudness follows the WAV's");
    let loud: Vec<f64> = chunks
        .iter()
        .filter(|(_, r)| *r > 0.02)
        .map(|(c, _)| *c)
        .collect();
    let good = loud.iter().filter(|&&c| c >= 0.7).count();
    assert!(
        good * 3 >= loud.len() * 2,
        "most voiced chunks match the WAV's waveform: {loud:.2?}"
    );
    assert!(
        tone_share(&pcm, 1000.0) < 0.01,
        "the listener's tone is not in the replay"
    );

    // Listed on maya's profile, for her and for budi.
    let mine = ok(ruang(&server, &maya, &["replay", "list"]));
    let lines: Vec<&str> = mine.lines().collect();
    assert_eq!(lines.len(), 1, "{mine}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields[0], room);
    assert!(fields[3].ends_with(&format!("/r/{room}")), "{mine}");
    assert_eq!(
        ok(ruang(&server, &budi, &["replay", "list", "@maya"])),
        mine
    );
    assert_eq!(ok(ruang(&server, &budi, &["replay", "list"])), "");

    // Only the host deletes it; then it is gone.
    let not_host = ruang(&server, &budi, &["replay", "delete", &room]);
    assert!(!not_host.status.success());
    assert!(String::from_utf8_lossy(&not_host.stderr).contains("forbidden"));
    assert_eq!(
        ok(ruang(&server, &maya, &["replay", "delete", &room])),
        "deleted"
    );
    let gone = ruang(
        &server,
        &maya,
        &["replay", &room, "--out", out.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not_found"));
    assert_eq!(ok(ruang(&server, &maya, &["replay", "list"])), "");
    drop(serve);
}
