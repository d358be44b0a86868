//! `ruang chat`, `ruang react`, `ruang room chat` and `ruang room reactions` as a user runs
//! them, against `ruang serve` on SQLite and PostgreSQL.

mod common;

use common::{fails, free_port, ok, ruang, Serve, RUANG};
use ruang_tests::{backends, fresh_postgres, Backend};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_reactions_from_the_cli() {
    for backend in backends() {
        eprintln!("-- on {backend:?}");
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres().await),
        };
        tokio::task::spawn_blocking(move || run(db)).await.unwrap();
    }
}

fn run(db: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let mut extra = vec!["--rtc-port", "0"];
    if let Some(url) = &db {
        extra.extend(["--database-url", url]);
    }
    let serve = Serve::start(data.path(), port, &extra);
    let code = serve.first_invite();
    let host = ok(ruang(
        &server,
        "",
        &["signup", "--invite", &code, "--handle", "host"],
    ));
    let mut invites = ok(ruang(&server, &host, &["invites"]))
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let mut member = |handle: &str| {
        let code = invites.remove(0);
        ok(ruang(
            &server,
            "",
            &["signup", "--invite", &code, "--handle", handle],
        ))
    };
    let adi = member("adi");
    let reader = member("reader");
    let room = ok(ruang(
        &server,
        &host,
        &["room", "create", "--title", "Chat"],
    ));

    // A reader tails the chat while others post and react.
    let mut tail = Command::new(RUANG)
        .args(["chat", &room, "--tail", "--seconds", "6"])
        .env("RUANG_SERVER", &server)
        .env("RUANG_TOKEN", &reader)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give the tail time to join (a message before it joins still shows: it is history).
    std::thread::sleep(Duration::from_millis(500));
    ok(ruang(
        &server,
        &host,
        &["chat", &room, "Slides: https://example.org/s"],
    ));
    ok(ruang(&server, &adi, &["chat", &room, "hello from adi"]));
    ok(ruang(
        &server,
        &adi,
        &["react", &room, "👏", "--count", "3", "--to", "host"],
    ));
    let started = Instant::now();
    let status = tail.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let mut out = String::new();
    tail.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    tail.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "tail failed: {err}");
    assert!(
        out.contains("#1\t@host\tSlides: https://example.org/s"),
        "{out}"
    );
    assert!(out.contains("#2\t@adi\thello from adi"), "{out}");
    // Three taps: in one burst, or split over two windows.
    let claps: u32 = out
        .lines()
        .filter(|l| l.starts_with("reactions\t"))
        .flat_map(|l| l.split('\t').skip(1))
        .filter_map(|part| {
            part.strip_prefix("👏 x")?
                .strip_suffix(" to @host")?
                .parse::<u32>()
                .ok()
        })
        .sum();
    assert_eq!(claps, 3, "{out}");

    // Moderation from the CLI: only the host may change the settings.
    let e = fails(ruang(&server, &adi, &["room", "chat", &room, "--off"]));
    assert!(e.contains("not allowed"), "{e}");
    assert_eq!(
        ok(ruang(&server, &host, &["room", "chat", &room, "--off"])),
        "chat off\tslow 0"
    );
    let e = fails(ruang(&server, &adi, &["chat", &room, "anyone?"]));
    assert!(e.contains("switched off"), "{e}");
    assert_eq!(
        ok(ruang(&server, &host, &["room", "chat", &room, "--on"])),
        "chat everyone\tslow 0"
    );
    ok(ruang(&server, &adi, &["chat", &room, "one"]));
    assert_eq!(
        ok(ruang(
            &server,
            &host,
            &["room", "chat", &room, "--slow", "20"]
        )),
        "chat everyone\tslow 20"
    );
    let e = fails(ruang(&server, &adi, &["chat", &room, "two"]));
    assert!(e.contains("slow mode"), "{e}");
    ok(ruang(&server, &host, &["room", "chat-delete", &room, "#2"]));
    let e = fails(ruang(&server, &adi, &["room", "chat-delete", &room, "1"]));
    assert!(e.contains("not allowed"), "{e}");

    assert_eq!(
        ok(ruang(
            &server,
            &host,
            &["room", "reactions", &room, "--off"]
        )),
        "reactions off"
    );
    let e = fails(ruang(&server, &adi, &["react", &room, "fire"]));
    assert!(e.contains("switched off"), "{e}");
    let e = fails(ruang(&server, &adi, &["react", &room, "🐍"]));
    assert!(e.contains("unknown reaction"), "{e}");
    // The history a new reader gets: the deleted message is gone.
    let out = ok(ruang(
        &server,
        &reader,
        &["chat", &room, "--tail", "--seconds", "0.5"],
    ));
    assert!(!out.contains("hello from adi"), "{out}");
    assert!(out.contains("#3\t@adi\tone"), "{out}");
}
