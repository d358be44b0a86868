//! An end-to-end encrypted room from the command line: `ruang room create --kind closed
//! --e2ee`, the host's `ruang bot speak` (its device makes the room's MLS group and adds the
//! listener's), a member's `ruang bot listen` that records what it hears. Both print the same
//! safety code for the same epoch, and the listener heard the host's WAV through SFrame.

mod common;

use common::{free_port, ok, ruang, Serve, RUANG};
use ruang_tests::replay::{chunk_correlations, locate};
use std::collections::HashMap;
use std::process::{Command, Stdio};

const SPEAKER_WAV: &[u8] = include_bytes!("../../assets/demo-speaker-a.wav");

/// `epoch → safety code` from a bot's "encrypted room: epoch N, D devices, safety code …"
/// lines.
fn codes(stdout: &str) -> HashMap<u64, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("encrypted room: epoch ")?;
            let (epoch, rest) = rest.split_once(',')?;
            let code = rest.split("safety code ").nth(1)?;
            Some((epoch.parse().ok()?, code.trim().to_owned()))
        })
        .collect()
}

#[test]
fn encrypted_room_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let serve = Serve::start(data.path(), port, &[]);
    let code = serve.first_invite();
    let maya = ok(ruang(
        &server,
        "",
        &["signup", "--invite", &code, "--handle", "maya"],
    ));
    let codes_out = ok(ruang(&server, &maya, &["invites"]));
    let budi = ok(ruang(
        &server,
        "",
        &[
            "signup",
            "--invite",
            codes_out.lines().next().unwrap(),
            "--handle",
            "budi",
        ],
    ));

    // Closed rooms only, and never recorded.
    let open = ruang(
        &server,
        &maya,
        &["room", "create", "--title", "O", "--e2ee"],
    );
    assert!(!open.status.success());
    assert!(String::from_utf8_lossy(&open.stderr).contains("invalid_field"));
    let taped = ruang(
        &server,
        &maya,
        &[
            "room", "create", "--title", "T", "--kind", "closed", "--e2ee", "--record",
        ],
    );
    assert!(String::from_utf8_lossy(&taped.stderr).contains("encrypted"));
    let room = ok(ruang(
        &server,
        &maya,
        &[
            "room", "create", "--title", "Sealed", "--kind", "closed", "--e2ee",
        ],
    ));
    ok(ruang(
        &server,
        &maya,
        &["room", "grant", &room, "--handle", "budi"],
    ));

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speaker.wav");
    std::fs::write(&wav, SPEAKER_WAV).unwrap();
    let reference = ruang_media::wav::read_wav(&wav).unwrap();
    let heard = dir.path().join("heard.wav");
    let listener = Command::new(RUANG)
        .args([
            "bot",
            "listen",
            "--room",
            &room,
            "--seconds",
            "12",
            "--record",
        ])
        .arg(&heard)
        .env("RUANG_SERVER", &server)
        .env("RUANG_TOKEN", &budi)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The host speaks once its device is in the group (it waits for that itself).
    let said = ok(ruang(
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
    ));
    let out = listener.wait_with_output().unwrap();
    let listened = ok(&out);
    eprintln!("host:\n{said}\nlistener:\n{listened}");
    assert!(said.contains("encrypted: "), "{said}");
    let (host_codes, member_codes) = (codes(&said), codes(&listened));
    let shared: Vec<u64> = member_codes
        .keys()
        .filter(|e| host_codes.contains_key(e))
        .copied()
        .collect();
    assert!(!shared.is_empty(), "both devices reached an epoch");
    for epoch in shared {
        assert_eq!(
            host_codes[&epoch], member_codes[&epoch],
            "one epoch, one safety code"
        );
    }
    let opened: u64 = listened
        .lines()
        .find_map(|l| l.strip_prefix("encrypted: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        opened >= 100,
        "the listener opened the host's frames: {listened}"
    );

    let pcm = ruang_media::wav::read_wav(&heard).unwrap();
    let (at, corr) = locate(&reference, &pcm);
    let chunks = chunk_correlations(&reference, &pcm, at);
    eprintln!("heard at {at}: {corr:.3}, chunks {chunks:.2?}");
    let loud: Vec<f64> = chunks
        .iter()
        .filter(|(_, r)| *r > 0.02)
        .map(|(c, _)| *c)
        .collect();
    let good = loud.iter().filter(|&&c| c >= 0.7).count();
    assert!(
        !loud.is_empty() && good * 3 >= loud.len() * 2,
        "the listener heard the host's WAV: {loud:.2?}"
    );
    drop(serve);
}
