//! The social verbs as a user runs them: `profile set --avatar`, `event create`, `events`,
//! `event start`, `notifications`, on SQLite and PostgreSQL.

mod common;

use common::{fails, free_port, ok, ruang, Serve};
use ruang_tests::{backends, fresh_postgres, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_photo_events_and_notifications_from_the_cli() {
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
    let token = ok(ruang(
        &server,
        "",
        &["signup", "--invite", &code, "--handle", "host"],
    ));
    let invite = ok(ruang(&server, &token, &["invites"]))
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let co = ok(ruang(
        &server,
        "",
        &["signup", "--invite", &invite, "--handle", "cohost"],
    ));
    ok(ruang(&server, &co, &["follow", "host"]));

    // profile set --avatar FILE --name --bio --link
    let photo = data.path().join("me.png");
    image::RgbImage::from_fn(240, 160, |x, y| image::Rgb([x as u8, y as u8, 90]))
        .save(&photo)
        .unwrap();
    ok(ruang(
        &server,
        &token,
        &[
            "profile",
            "set",
            "--avatar",
            photo.to_str().unwrap(),
            "--name",
            "The Host",
            "--bio",
            "Talks about radio",
            "--link",
            "https://example.org/host",
        ],
    ));
    let shown = ok(ruang(&server, &co, &["profile", "host"]));
    assert!(shown.starts_with("@host\tThe Host"), "{shown}");
    assert!(shown.contains("Talks about radio"));
    assert!(shown.contains("https://example.org/host"));
    let photo_url = shown
        .lines()
        .find_map(|l| l.strip_prefix("photo "))
        .expect("the photo's URL");
    assert!(photo_url.starts_with(&format!("{server}/media/avatars/")));
    assert!(photo_url.ends_with("-512.jpg"));
    assert_eq!(
        ok(ruang(&server, &token, &["profile", "followers"])),
        "@cohost\tcohost"
    );
    // A file that is not a picture: one line on stderr, nothing changed.
    let junk = data.path().join("junk.png");
    std::fs::write(&junk, b"not a png").unwrap();
    let err = fails(ruang(
        &server,
        &token,
        &["profile", "set", "--avatar", junk.to_str().unwrap()],
    ));
    assert!(err.contains("JPEG, PNG or WebP"), "{err}");
    assert!(ok(ruang(&server, &co, &["profile", "host"])).contains(photo_url));

    // event create prints the id only; events lists it; event start prints the room id.
    // A date about a month ahead, 09:00 at UTC+7 = 02:00 UTC.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = civil_date(secs / 86_400 + 30);
    let id = ok(ruang(
        &server,
        &token,
        &[
            "event",
            "create",
            "--title",
            "Radio hour",
            "--at",
            &format!("{day}T09:00:00+07:00"),
            "--description",
            "Old radios",
            "--cohost",
            "cohost",
        ],
    ));
    assert_eq!(id.len(), 12, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    let listed = ok(ruang(&server, &co, &["events"]));
    assert_eq!(
        listed,
        format!("{id}\t{day}T02:00:00+00:00\tscheduled\tRadio hour")
    );
    let err = fails(ruang(
        &server,
        &token,
        &[
            "event",
            "create",
            "--title",
            "X",
            "--at",
            "2030-01-15T09:00",
            "--tz",
            "Nowhere/Land",
        ],
    ));
    assert!(err.contains("time zone"), "{err}");
    ok(ruang(&server, &co, &["event", "notify", &id]));
    let room = ok(ruang(&server, &token, &["event", "start", &id]));
    assert_eq!(room.len(), 12);
    let rooms = ok(ruang(&server, &co, &["rooms"]));
    assert!(rooms.starts_with(&room), "{rooms}");
    assert!(ok(ruang(&server, &co, &["event", "show", &id])).contains("\tlive\t"));

    // search: people, rooms and events, one per line.
    let found = ok(ruang(&server, &co, &["search", "the host"]));
    assert_eq!(found, "person\t@host\tThe Host");
    let found = ok(ruang(&server, &co, &["search", "radio"]));
    assert!(
        found.contains(&format!("room\t{room}\tRadio hour")),
        "{found}"
    );
    assert!(found.contains(&format!("event\t{id}\t")), "{found}");

    // notifications: the started event reached the co-host (created in the background).
    let mut feed = String::new();
    for _ in 0..100 {
        feed = ok(ruang(&server, &co, &["notifications"]));
        if feed.contains("event_started") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let line = feed
        .lines()
        .find(|l| l.contains("event_started"))
        .unwrap_or_else(|| panic!("{feed}"));
    assert!(line.starts_with("*\t"), "unread: {line}");
    assert!(line.ends_with(&format!("{server}/r/{room}")), "{line}");
    ok(ruang(&server, &co, &["notifications", "--read"]));
    assert!(ok(ruang(&server, &co, &["notifications"]))
        .lines()
        .all(|l| !l.starts_with('*')));
    drop(serve);
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
