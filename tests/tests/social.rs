//! The social layer end to end: photos, profiles, scheduled rooms (events), the
//! notification feed. Real server, real clients, SQLite and PostgreSQL.

use image::{DynamicImage, ImageFormat};
use ruang_client::ApiClient;
use ruang_proto::{
    CreateEventRequest, ErrorCode, EventStatus, NotificationKind, NotificationSettings,
    ProfileUpdate, Role, RoomKind, UpdateEventRequest, UserId,
};
use ruang_tests::{each_backend, Backend, TestServer, WAIT};
use std::io::Cursor;
use std::time::{Duration, Instant};

fn picture(w: u32, h: u32, seed: u8, format: ImageFormat) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8 ^ seed, (y % 241) as u8, seed])
    }));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Files in the photo directory (temporary files included: there must be none).
fn media_files(srv: &TestServer) -> Vec<String> {
    let dir = srv.dir.path().join("media/avatars");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn code(e: ruang_client::ClientError) -> Option<ErrorCode> {
    e.code()
}

async fn photos(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let http = reqwest::Client::new();

    // A 300×200 PNG with 40 bytes of junk after it: cropped to a square, re-encoded.
    let mut png = picture(300, 200, 7, ImageFormat::Png);
    png.extend_from_slice(b"GPS 48.8584N 2.2945E -- trailing secret");
    let p = ann.set_avatar(png).await.unwrap();
    let hash = p.avatar.clone().expect("the profile shows the photo");
    assert_eq!(hash.len(), 32);
    assert_eq!(
        media_files(&srv),
        [format!("{hash}-128.jpg"), format!("{hash}-512.jpg")]
    );
    for size in [128u32, 512] {
        let resp = http
            .get(format!(
                "{}{}",
                srv.url,
                ruang_proto::avatar_path(&hash, size)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert!(resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let bytes = resp.bytes().await.unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"secret"));
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (size, size));
    }

    // Bad input: junk, a photo too small, a GIF, an oversized body. Each is refused with a
    // clear error, and the photo, the files and the profile are as they were.
    for (body, want) in [
        (
            b"definitely not a picture".to_vec(),
            ErrorCode::InvalidField,
        ),
        (
            picture(20, 20, 1, ImageFormat::Png),
            ErrorCode::InvalidField,
        ),
        (
            {
                let mut g = b"GIF89a".to_vec();
                g.resize(500, 0);
                g
            },
            ErrorCode::InvalidField,
        ),
        (vec![0u8; 6 * 1024 * 1024], ErrorCode::PayloadTooLarge),
        (Vec::new(), ErrorCode::InvalidField),
    ] {
        let err = ann.set_avatar(body).await.unwrap_err();
        assert_eq!(code(err), Some(want));
        assert_eq!(
            ann.me().await.unwrap().avatar.as_deref(),
            Some(hash.as_str())
        );
        assert_eq!(media_files(&srv).len(), 2, "nothing half-written");
    }
    // Truncated JPEG.
    let jpeg = picture(200, 200, 3, ImageFormat::Jpeg);
    let err = ann
        .set_avatar(jpeg[..jpeg.len() / 3].to_vec())
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::InvalidField));
    // Unknown photo names and path tricks get 404s.
    for path in [
        "/media/avatars/0123456789abcdef0123456789abcdef-128.jpg",
        "/media/avatars/..%2F..%2Fruang.db",
        "/media/avatars/x.jpg",
    ] {
        let resp = http.get(format!("{}{path}", srv.url)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }

    // The face shows where the person does: hallway cards, the room page and its preview.
    let room = ann.create_room("Faces", RoomKind::Open).await.unwrap();
    assert_eq!(room.speakers[0].avatar.as_deref(), Some(hash.as_str()));
    let hall = admin.hallway().await.unwrap();
    assert_eq!(hall[0].speakers[0].avatar.as_deref(), Some(hash.as_str()));
    let page = http
        .get(format!("{}/r/{}", srv.url, room.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("<img src=\"../media/avatars/{hash}-128.jpg\"")));
    assert!(page.contains(&format!(
        "<meta property=\"og:image\" content=\"{}/media/avatars/{hash}-512.jpg\">",
        srv.url
    )));
    // In the room itself (signalling snapshot).
    let s = srv.join(&admin, room.id.as_str()).await;
    let ann_id = ann.me().await.unwrap().id;
    let st = s
        .wait_for(WAIT, |st| st.room.participant(&ann_id).is_some())
        .await
        .unwrap();
    assert_eq!(
        st.room.participant(&ann_id).unwrap().user.avatar.as_deref(),
        Some(hash.as_str())
    );

    // A new photo replaces the old one; its files go.
    let p2 = ann
        .set_avatar(picture(400, 400, 99, ImageFormat::WebP))
        .await
        .unwrap();
    let hash2 = p2.avatar.unwrap();
    assert_ne!(hash2, hash);
    assert_eq!(
        media_files(&srv),
        [format!("{hash2}-128.jpg"), format!("{hash2}-512.jpg")]
    );
    // Two members with the same picture share the files; removing one keeps them.
    admin
        .set_avatar(picture(400, 400, 99, ImageFormat::WebP))
        .await
        .unwrap();
    ann.delete_avatar().await.unwrap();
    assert!(ann.me().await.unwrap().avatar.is_none());
    assert_eq!(media_files(&srv).len(), 2, "still shown by root");
    admin.delete_avatar().await.unwrap();
    assert!(media_files(&srv).is_empty());

    // Uploads are rate limited per address (10 a minute by default, good or bad): 8 reached
    // the handler above (the oversized one was refused before it).
    for _ in 0..2 {
        let err = ann.set_avatar(b"junk".to_vec()).await.unwrap_err();
        assert_eq!(code(err), Some(ErrorCode::InvalidField));
    }
    let err = ann
        .set_avatar(picture(100, 100, 5, ImageFormat::Png))
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::RateLimited));
    assert!(ann.me().await.unwrap().avatar.is_none());
    // The CLI's flag goes through the same endpoint: covered in cli/tests/social.rs.
}
each_backend!(
    photos_upload_crop_serve_replace_and_refuse_bad_input,
    photos
);

async fn profiles(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let bob = srv.member(&ann, "bob").await;
    let cat = srv.member(&ann, "cat").await;

    // Links: up to three http(s) links; anything else refused and nothing changed.
    let p = ann
        .update_profile(&ProfileUpdate {
            bio: Some("Radio host".into()),
            links: Some(vec![
                "https://example.org/ann".into(),
                "http://blog.example.net".into(),
            ]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        p.links,
        ["https://example.org/ann", "http://blog.example.net/"]
    );
    for bad in [
        vec!["javascript:alert(1)".to_owned()],
        vec!["https://a.org".to_owned(); 4],
        vec!["not a link".to_owned()],
    ] {
        let err = ann
            .update_profile(&ProfileUpdate {
                links: Some(bad),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(code(err), Some(ErrorCode::InvalidField));
    }
    assert_eq!(admin.profile("ann").await.unwrap().links.len(), 2);

    // Followers and following, paged, newest first.
    bob.follow("ann").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    cat.follow("ann").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    admin.follow("ann").await.unwrap();
    let first = bob
        .follow_list("ann", "followers", None, Some(2))
        .await
        .unwrap();
    let handles: Vec<&str> = first.users.iter().map(|u| u.handle.as_str()).collect();
    assert_eq!(handles, ["root", "cat"]);
    let rest = bob
        .follow_list("ann", "followers", first.next_cursor.as_deref(), Some(2))
        .await
        .unwrap();
    assert_eq!(rest.users.len(), 1);
    assert_eq!(rest.users[0].handle, "bob");
    assert!(rest.next_cursor.is_none());
    let following = ann
        .follow_list("bob", "following", None, None)
        .await
        .unwrap();
    assert_eq!(following.users[0].handle, "ann");
    assert_eq!(
        code(
            ann.follow_list("ann", "followers", Some("garbage"), None)
                .await
                .unwrap_err()
        ),
        Some(ErrorCode::InvalidField)
    );
    let p = bob.profile("ann").await.unwrap();
    assert_eq!((p.followers, p.following), (3, 0));
    assert!(p.followed_by_you);
    // The invite tree: who invited ann, whom ann invited.
    assert_eq!(p.invited_by.unwrap().handle, "root");
    let invited = bob.follow_list("ann", "invited", None, None).await.unwrap();
    let handles: Vec<&str> = invited.users.iter().map(|u| u.handle.as_str()).collect();
    assert_eq!(handles, ["bob", "cat"]);

    // Rooms they host now and next. Followers hear of the room.
    let room = ann
        .create_room("Morning show", RoomKind::Open)
        .await
        .unwrap();
    wait_kind(&bob, NotificationKind::RoomStarted, 1).await;
    let n = &bob.notifications(None, None).await.unwrap().notifications[0];
    assert_eq!(n.text, "ANN started a room");
    assert_eq!(n.link, format!("{}/r/{}", srv.url, room.id));
    assert_eq!(n.actor.as_ref().unwrap().handle, "ann");
    let event = ann
        .create_event(&CreateEventRequest {
            title: "Evening show".into(),
            starts_at: soon(120),
            ..Default::default()
        })
        .await
        .unwrap();
    let p = bob.profile("ann").await.unwrap();
    assert_eq!(p.hosting_now.len(), 1);
    assert_eq!(p.hosting_now[0].id, room.id);
    assert_eq!(p.upcoming.len(), 1);
    assert_eq!(p.upcoming[0].id, event.id);
    // A closed room is not shown to people who may not see it.
    let closed = admin
        .create_room("Private", RoomKind::Closed)
        .await
        .unwrap();
    assert!(bob.profile("root").await.unwrap().hosting_now.is_empty());
    assert_eq!(admin.me().await.unwrap().hosting_now[0].id, closed.id);
}
each_backend!(profiles_links_follow_lists_invite_tree_hosting, profiles);

/// RFC 3339 (UTC) `minutes` from now.
fn soon(minutes: i64) -> String {
    let ms = ruang_server::store::now_ms() + minutes * 60_000;
    jiff_like(ms)
}

fn jiff_like(ms: i64) -> String {
    // Seconds since the epoch to a UTC calendar date (civil-from-days, Howard Hinnant).
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The UTC date `days` from now: `(YYYY-MM-DD, its 12:00 UTC in ms, "Tue 1 Jun 2027")`.
fn day_ahead(days: i64) -> (String, i64, String) {
    let now = ruang_server::store::now_ms();
    let noon = (now / 86_400_000 + days) * 86_400_000 + 12 * 3_600_000;
    let date = jiff_like(noon)[..10].to_owned();
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        [(noon / 86_400_000).rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][date[5..7].parse::<usize>().unwrap() - 1];
    let human = format!(
        "{weekday} {} {month} {}",
        date[8..10].parse::<u32>().unwrap(),
        &date[..4]
    );
    (date, noon, human)
}

async fn feed(c: &ApiClient) -> Vec<(NotificationKind, String)> {
    c.notifications(None, Some(100))
        .await
        .unwrap()
        .notifications
        .into_iter()
        .map(|n| (n.kind, n.text))
        .collect()
}

/// Waits until `c` has a notification of `kind` (they are created in the background).
async fn wait_kind(c: &ApiClient, kind: NotificationKind, count: usize) {
    let until = Instant::now() + WAIT;
    loop {
        let n = feed(c).await.iter().filter(|(k, _)| *k == kind).count();
        if n >= count {
            return;
        }
        assert!(
            Instant::now() < until,
            "no {kind:?} ×{count}: {:?}",
            feed(c).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let bob = srv.member(&admin, "bob").await;
    let cat = srv.member(&admin, "cat").await;
    cat.follow("ann").await.unwrap();
    let http = reqwest::Client::new();

    // Local time in a foreign zone: 19:00 in Jakarta (UTC+7) is 12:00 UTC. A day a month
    // from now (Jakarta has no daylight saving time).
    let (day, noon_utc, human_day) = day_ahead(30);
    let e = ann
        .create_event(&CreateEventRequest {
            title: "Jazz, late".into(),
            description: "Standards; requests\ntaken".into(),
            starts_at: format!("{day}T19:00"),
            time_zone: Some("Asia/Jakarta".into()),
            kind: RoomKind::Open,
            cohosts: vec!["bob".into()],
        })
        .await
        .unwrap();
    assert_eq!(e.starts_at, noon_utc);
    assert_eq!(e.starts_at_local, format!("{day}T19:00:00+07:00"));
    assert_eq!(e.time_zone, "Asia/Jakarta");
    assert_eq!(e.status, EventStatus::Scheduled);
    assert_eq!(e.cohosts[0].handle, "bob");
    assert_eq!(e.link, format!("{}/e/{}", srv.url, e.id));
    // The same instant given with an offset.
    let same = admin
        .create_event(&CreateEventRequest {
            title: "Same time".into(),
            starts_at: format!("{day}T21:00:00+09:00"),
            time_zone: Some("Asia/Tokyo".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(same.starts_at, noon_utc);
    assert_eq!(same.starts_at_local, format!("{day}T21:00:00+09:00"));

    // Bad times and zones: clear errors, nothing stored.
    for (at, tz) in [
        ("2030-06-01T19:00", "Mars/Olympus_Mons"),
        ("2030-06-01T19:00", "../../etc/localtime"),
        ("next tuesday", "UTC"),
        ("2030-06-01", "UTC"),
        ("2020-01-01T10:00:00Z", "UTC"),
        ("2099-01-01T10:00:00Z", "UTC"),
    ] {
        let err = ann
            .create_event(&CreateEventRequest {
                title: "Bad".into(),
                starts_at: at.into(),
                time_zone: Some(tz.into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(code(err), Some(ErrorCode::InvalidField), "{at} {tz}");
    }
    let err = ann
        .create_event(&CreateEventRequest {
            title: "Bad".into(),
            starts_at: soon(60),
            cohosts: vec!["nobody_here".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::NotFound));

    // Upcoming: cat follows ann, so ann's event comes first though root's is as soon.
    let up = cat.events().await.unwrap();
    let ids: Vec<&str> = up.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [e.id.as_str(), same.id.as_str()]);
    // A closed event is listed to its host and co-hosts only (but opens by link).
    let secret = ann
        .create_event(&CreateEventRequest {
            title: "Inner circle".into(),
            starts_at: soon(600),
            kind: RoomKind::Closed,
            cohosts: vec!["bob".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!cat
        .events()
        .await
        .unwrap()
        .iter()
        .any(|x| x.id == secret.id));
    assert!(bob
        .events()
        .await
        .unwrap()
        .iter()
        .any(|x| x.id == secret.id));
    assert_eq!(cat.event(&secret.id).await.unwrap().title, "Inner circle");

    // Notify me; edits and cancellations reach those who asked.
    cat.notify_event(&e.id, true).await.unwrap();
    admin.notify_event(&e.id, true).await.unwrap();
    admin.notify_event(&e.id, false).await.unwrap();
    assert_eq!(cat.event(&e.id).await.unwrap().interested, 1);
    assert!(cat.event(&e.id).await.unwrap().notify_me);
    let edited = ann
        .update_event(
            &e.id,
            &UpdateEventRequest {
                title: Some("Jazz, later".into()),
                starts_at: Some(format!("{day}T20:30")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.starts_at_local, format!("{day}T20:30:00+07:00"));
    wait_kind(&cat, NotificationKind::EventChanged, 1).await;
    assert!(feed(&admin)
        .await
        .iter()
        .all(|(k, _)| *k != NotificationKind::EventChanged));
    // Only the host edits, cancels and starts.
    for err in [
        bob.update_event(&e.id, &UpdateEventRequest::default())
            .await
            .unwrap_err(),
        bob.cancel_event(&e.id).await.unwrap_err(),
    ] {
        assert_eq!(code(err), Some(ErrorCode::Forbidden));
    }
    assert_eq!(
        code(bob.start_event(&e.id).await.map(|_| ()).unwrap_err()),
        Some(ErrorCode::Forbidden)
    );
    // A bad zone in an edit changes nothing.
    let err = ann
        .update_event(
            &e.id,
            &UpdateEventRequest {
                time_zone: Some("Nowhere/Atlantis".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::InvalidField));
    assert_eq!(ann.event(&e.id).await.unwrap().time_zone, "Asia/Jakarta");

    // Cancel: subscribers hear; the event stays readable as cancelled; it cannot start.
    let gone = ann
        .create_event(&CreateEventRequest {
            title: "Not happening".into(),
            starts_at: soon(300),
            ..Default::default()
        })
        .await
        .unwrap();
    cat.notify_event(&gone.id, true).await.unwrap();
    ann.cancel_event(&gone.id).await.unwrap();
    wait_kind(&cat, NotificationKind::EventCancelled, 1).await;
    assert_eq!(
        cat.event(&gone.id).await.unwrap().status,
        EventStatus::Cancelled
    );
    assert!(!cat.events().await.unwrap().iter().any(|x| x.id == gone.id));
    assert_eq!(
        code(ann.start_event(&gone.id).await.map(|_| ()).unwrap_err()),
        Some(ErrorCode::InvalidTarget)
    );
    assert_eq!(
        code(
            cat.notify_event(&gone.id, true)
                .await
                .map(|_| ())
                .unwrap_err()
        ),
        Some(ErrorCode::InvalidTarget)
    );
    assert_eq!(
        code(ann.cancel_event(&gone.id).await.unwrap_err()),
        Some(ErrorCode::InvalidTarget)
    );

    // The page and the calendar file.
    let resp = http.get(&e.link).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("<meta property=\"og:title\" content=\"Jazz, later\">"));
    assert!(
        page.contains(&format!("{human_day}, 20:30 (Asia/Jakarta, UTC+07)")),
        "{page}"
    );
    assert!(page.contains("Standards; requests<br>taken"));
    let resp = http.get(format!("{}.ics", e.link)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let ics = resp.text().await.unwrap();
    assert!(
        ics.contains(&format!("DTSTART:{}T133000Z\r\n", day.replace('-', ""))),
        "{ics}"
    );
    assert!(ics.contains("SUMMARY:Jazz\\, later\r\n"));
    let cancelled = http
        .get(format!("{}/e/{}.ics", srv.url, gone.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cancelled.contains("STATUS:CANCELLED\r\n"));
    for bad in ["/e/nope", "/e/..%2Fx", "/e/", "/e/a/b"] {
        let resp = http.get(format!("{}{bad}", srv.url)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{bad}");
    }

    // The host starts the room: subscribers and followers hear, the co-host comes in as
    // a moderator, and the event shows live.
    let room = ann.start_event(&e.id).await.unwrap();
    assert_eq!(room.title, "Jazz, later");
    assert_eq!(
        code(ann.start_event(&e.id).await.map(|_| ()).unwrap_err()),
        Some(ErrorCode::InvalidTarget),
        "started once"
    );
    let started = cat.event(&e.id).await.unwrap();
    assert_eq!(started.status, EventStatus::Live);
    assert_eq!(started.room_id.as_ref(), Some(&room.id));
    wait_kind(&cat, NotificationKind::EventStarted, 1).await;
    let host = srv.join(&ann, room.id.as_str()).await;
    let co = srv.join(&bob, room.id.as_str()).await;
    assert_eq!(co.state().room.my_role(), Some(Role::Moderator));
    let listener = srv.join(&cat, room.id.as_str()).await;
    assert_eq!(listener.state().room.my_role(), Some(Role::Listener));
    // The co-host moderates: brings cat on stage.
    let cat_id: UserId = cat.me().await.unwrap().id;
    co.invite_to_speak(&cat_id).await.unwrap();
    listener
        .wait_for(WAIT, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .unwrap();
    drop(host);
}
each_backend!(events_time_zones_notify_edit_cancel_start_pages, events);

async fn notifications(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        // Every event within the hour is "starting soon".
        c.event_reminder_lead = Duration::from_secs(3600);
    })
    .await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    wait_kind(&admin, NotificationKind::InviteeJoined, 1).await;
    let (_, text) = feed(&admin).await.remove(0);
    assert_eq!(text, "ANN, whom you invited, joined Ruang");

    // Followed: one notification, not one per follow/unfollow/follow.
    ann.follow("root").await.unwrap();
    ann.unfollow("root").await.unwrap();
    ann.follow("root").await.unwrap();
    wait_kind(&admin, NotificationKind::FollowedYou, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let follows = feed(&admin)
        .await
        .iter()
        .filter(|(k, _)| *k == NotificationKind::FollowedYou)
        .count();
    assert_eq!(follows, 1, "repeats within the hour are held back");

    // A crowd following at once: at most 20 "followed you" an hour.
    let mut crowd = Vec::new();
    for i in 0..6 {
        let inviter = if i == 0 { &admin } else { &crowd[0] };
        let m: ApiClient = srv.member(inviter, &format!("fan{i}")).await;
        crowd.push(m);
    }
    // 6 members + admin's 5 codes: make more with the admin's minting.
    for i in 6..24 {
        let code = admin.create_invite().await.unwrap().code;
        let mut m = srv.anon();
        m.signup(&code, &format!("fan{i}"), "Fan").await.unwrap();
        crowd.push(m);
    }
    for m in &crowd {
        m.follow("root").await.unwrap();
    }
    wait_kind(&admin, NotificationKind::FollowedYou, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = admin.notifications(None, Some(100)).await.unwrap();
    let n = page
        .notifications
        .iter()
        .filter(|n| n.kind == NotificationKind::FollowedYou)
        .count();
    assert_eq!(n, 20, "capped per hour");

    // Paging and the read marker.
    let total = page.notifications.len();
    assert_eq!(page.unread as usize, total);
    let first = admin.notifications(None, Some(5)).await.unwrap();
    assert_eq!(first.notifications.len(), 5);
    let second = admin
        .notifications(first.next_cursor.as_deref(), Some(5))
        .await
        .unwrap();
    assert_eq!(second.notifications.len(), 5);
    assert!(second.notifications[0].created_at <= first.notifications[4].created_at);
    assert!(first
        .notifications
        .iter()
        .all(|a| second.notifications.iter().all(|b| a.id != b.id)));
    let marker = first.notifications[4].created_at;
    admin.mark_notifications_read(marker).await.unwrap();
    let after = admin.notifications(None, Some(100)).await.unwrap();
    assert_eq!(after.read_up_to, marker);
    assert!(after
        .notifications
        .iter()
        .all(|n| n.read == (n.created_at <= marker)));
    assert_eq!(
        after.unread as usize,
        after.notifications.iter().filter(|n| !n.read).count()
    );
    assert!(after.notifications[total - 1].read);
    // The marker never goes back.
    admin.mark_notifications_read(0).await.unwrap();
    assert_eq!(
        admin.notifications(None, Some(1)).await.unwrap().read_up_to,
        marker
    );
    admin
        .mark_notifications_read(after.notifications[0].created_at)
        .await
        .unwrap();
    assert_eq!(admin.notifications(None, Some(1)).await.unwrap().unread, 0);

    // Muted kinds are not created.
    ann.set_notification_settings(&NotificationSettings {
        muted_kinds: vec![NotificationKind::EventScheduled],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        ann.notification_settings().await.unwrap().muted_kinds,
        [NotificationKind::EventScheduled]
    );
    let e = admin
        .create_event(&CreateEventRequest {
            title: "Soon".into(),
            starts_at: soon(30),
            ..Default::default()
        })
        .await
        .unwrap();
    // The reminder ("starts soon") reaches those who asked, once.
    ann.notify_event(&e.id, true).await.unwrap();
    // Reminders were taken before ann subscribed, maybe; edit the time to re-arm.
    admin
        .update_event(
            &e.id,
            &UpdateEventRequest {
                starts_at: Some(soon(20)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_kind(&ann, NotificationKind::EventStarting, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kinds: Vec<NotificationKind> = feed(&ann).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == NotificationKind::EventStarting)
            .count(),
        1
    );
    assert!(!kinds.contains(&NotificationKind::EventScheduled), "muted");
    // A crowd member who did not mute it got "scheduled".
    wait_kind(&crowd[0], NotificationKind::EventScheduled, 1).await;
    let n = &crowd[0]
        .notifications(None, None)
        .await
        .unwrap()
        .notifications[0];
    assert_eq!(n.link, format!("{}/e/{}", srv.url, e.id));
    assert_eq!(n.text, "ROOT scheduled “Soon”");
    // Bad settings body.
    let resp = reqwest::Client::new()
        .put(format!("{}/v1/notifications/settings", srv.url))
        .bearer_auth(ann.token().unwrap())
        .body(r#"{"muted_kinds":["no_such_kind"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
each_backend!(
    notifications_feed_paging_read_marker_mutes_caps_reminders,
    notifications
);

async fn search(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let mut maya = srv.anon();
    maya.signup(
        &admin.create_invite().await.unwrap().code,
        "maya_sari",
        "Maya Sari",
    )
    .await
    .unwrap();
    let mut mayb = srv.anon();
    mayb.signup(
        &admin.create_invite().await.unwrap().code,
        "mayang",
        "Mayang Putri",
    )
    .await
    .unwrap();
    let mut other = srv.anon();
    other
        .signup(&admin.create_invite().await.unwrap().code, "budi", "Budi")
        .await
        .unwrap();
    other.follow("mayang").await.unwrap();

    // People by handle or name prefix; the followed one first for budi.
    let r = other.search("may").await.unwrap();
    let handles: Vec<&str> = r.people.iter().map(|u| u.handle.as_str()).collect();
    assert_eq!(handles.len(), 2);
    assert_eq!(handles[0], "mayang", "followed first");
    assert!(handles.contains(&"maya_sari"));
    let r = other.search("sari").await.unwrap();
    assert_eq!(r.people.len(), 1);
    assert_eq!(r.people[0].handle, "maya_sari");
    // Every word must match.
    assert!(other.search("sari putri").await.unwrap().people.is_empty());
    assert_eq!(other.search("mayang putri").await.unwrap().people.len(), 1);
    // A renamed member is found by the new name only.
    maya.update_profile(&ProfileUpdate {
        name: Some("Maya Kusuma".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(other.search("sari kus").await.unwrap().people.len() == 1);
    assert!(other
        .search("maya sari")
        .await
        .unwrap()
        .people
        .iter()
        .all(|u| u.name != "Maya Sari"));

    // Rooms: live ones the caller may see, by title.
    let open = maya.create_room("Kopi pagi", RoomKind::Open).await.unwrap();
    let closed = maya
        .create_room("Kopi rahasia", RoomKind::Closed)
        .await
        .unwrap();
    let r = other.search("kopi").await.unwrap();
    let ids: Vec<&str> = r.rooms.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, [open.id.as_str()], "the closed room stays hidden");
    assert_eq!(maya.search("kopi").await.unwrap().rooms.len(), 2);
    let _ = closed;

    // Events by title and description; cancelled ones drop out; live first.
    let talk = mayb
        .create_event(&CreateEventRequest {
            title: "Gamelan evening".into(),
            description: "Traditional kopi and music".into(),
            starts_at: soon(90),
            ..Default::default()
        })
        .await
        .unwrap();
    let later = maya
        .create_event(&CreateEventRequest {
            title: "Kopi tasting".into(),
            starts_at: soon(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = other.search("kopi").await.unwrap();
    let ids: Vec<&str> = r.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], talk.id, "the followed host's event first");
    assert_eq!(other.search("gamelan").await.unwrap().events.len(), 1);
    maya.cancel_event(&later.id).await.unwrap();
    assert_eq!(other.search("kopi").await.unwrap().events.len(), 1);

    // Query syntax is never passed through; empty or over-long queries are refused.
    for q in [
        "* OR kopi",
        "NEAR(kopi",
        "kopi\" OR \"x",
        "a:* | b",
        "kopi'); DROP TABLE users; --",
    ] {
        other.search(q).await.unwrap();
    }
    assert_eq!(other.search("\"kopi\"").await.unwrap().rooms.len(), 1);
    for q in ["", "   ", "!!!", &"x".repeat(101)] {
        assert_eq!(
            code(other.search(q).await.unwrap_err()),
            Some(ErrorCode::InvalidField),
            "{q:?}"
        );
    }
}
each_backend!(search_people_rooms_events_ranked_on_both_databases, search);

/// What the loopback push service received: (endpoint name, headers, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, Vec<u8>)>>>;

/// A push service on loopback: `/ok/NAME` takes messages (201), `/gone` answers 410,
/// `/missing` 404. Everything received is kept.
struct PushService {
    url: String,
    got: Received,
}

impl PushService {
    async fn start() -> PushService {
        use axum::extract::{Path, State};
        type Got = Received;
        let got: Got = Default::default();
        async fn take(
            State(got): State<Got>,
            Path(name): Path<String>,
            headers: axum::http::HeaderMap,
            body: axum::body::Bytes,
        ) -> axum::http::StatusCode {
            got.lock().unwrap().push((name, headers, body.to_vec()));
            axum::http::StatusCode::CREATED
        }
        let app = axum::Router::new()
            .route("/ok/{name}", axum::routing::post(take))
            .route(
                "/gone",
                axum::routing::post(|| async { axum::http::StatusCode::GONE }),
            )
            .route(
                "/missing",
                axum::routing::post(|| async { axum::http::StatusCode::NOT_FOUND }),
            )
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        PushService { url, got }
    }

    fn count(&self, name: &str) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _, _)| n == name)
            .count()
    }
}

/// A browser's or UnifiedPush app's side of a subscription.
struct Receiver {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Receiver {
    fn new(seed: u8) -> Receiver {
        use p256::elliptic_curve::rand_core::OsRng;
        Receiver {
            secret: p256::SecretKey::random(&mut OsRng),
            auth: [seed; 16],
        }
    }

    fn request(&self, endpoint: &str) -> serde_json::Value {
        use base64::Engine;
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        serde_json::json!({
            "endpoint": endpoint,
            "keys": {
                "p256dh": b64.encode(self.secret.public_key().to_encoded_point(false).as_bytes()),
                "auth": b64.encode(self.auth),
            }
        })
    }
}

async fn push(b: Backend) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let srv = TestServer::start_with(b, |c| c.push_allow_http = true).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let bob = srv.member(&admin, "bob").await;
    let service = PushService::start().await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}{path}", srv.url);
    let key: serde_json::Value = http
        .get(api("/v1/push/key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vapid = key["vapid_public_key"].as_str().unwrap().to_owned();
    assert_eq!(b64.decode(&vapid).unwrap().len(), 65);

    let phone = Receiver::new(7);
    let subscribe = |c: &ApiClient, body: serde_json::Value| {
        http.post(api("/v1/push/subscriptions"))
            .bearer_auth(c.token().unwrap())
            .json(&body)
            .send()
    };
    let endpoint = format!("{}/ok/ann", service.url);
    let r = subscribe(&ann, phone.request(&endpoint)).await.unwrap();
    assert_eq!(r.status(), 201);
    for dead in ["gone", "missing"] {
        let r = subscribe(
            &ann,
            Receiver::new(1).request(&format!("{}/{dead}", service.url)),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
    }
    let list = |c: &ApiClient| {
        let req = http
            .get(api("/v1/push/subscriptions"))
            .bearer_auth(c.token().unwrap().to_owned());
        async move {
            req.send()
                .await
                .unwrap()
                .json::<Vec<String>>()
                .await
                .unwrap()
        }
    };
    assert_eq!(list(&ann).await.len(), 3);
    // Bad subscriptions: clear errors, nothing stored.
    for bad in [
        serde_json::json!({"endpoint": "ftp://x.example/", "keys": {"p256dh": "x", "auth": "y"}}),
        {
            let mut v = phone.request(&endpoint);
            v["keys"]["auth"] = "c2hvcnQ".into();
            v
        },
        {
            let mut v = phone.request(&endpoint);
            v["keys"]["p256dh"] = b64.encode([4u8; 65]).into();
            v
        },
    ] {
        let r = subscribe(&bob, bad).await.unwrap();
        assert_eq!(r.status(), 400);
    }
    assert!(list(&bob).await.is_empty());

    // bob follows ann: the notification reaches ann's phone, encrypted for it alone.
    bob.follow("ann").await.unwrap();
    let until = Instant::now() + WAIT;
    while service.count("ann") == 0 {
        assert!(Instant::now() < until, "no push arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, headers, body) = service.got.lock().unwrap()[0].clone();
    assert_eq!(headers["content-encoding"], "aes128gcm");
    assert_eq!(headers["ttl"], "86400");
    let plain = ruang_server::service::push::decrypt(&body, &phone.secret, &phone.auth)
        .expect("decrypts with the subscription's private key");
    let n: ruang_proto::Notification = serde_json::from_slice(&plain).unwrap();
    assert_eq!(n.kind, NotificationKind::FollowedYou);
    assert_eq!(n.text, "BOB followed you");
    assert_eq!(n.link, "ruang://u/bob");
    // Another key cannot read it.
    let other = Receiver::new(7);
    assert!(ruang_server::service::push::decrypt(&body, &other.secret, &other.auth).is_err());
    // VAPID: a JWT for the endpoint's origin, signed by the key the server publishes.
    let auth = headers["authorization"].to_str().unwrap();
    let (t, k) = auth
        .strip_prefix("vapid t=")
        .unwrap()
        .split_once(", k=")
        .unwrap();
    assert_eq!(k, vapid);
    let (signing_input, sig) = t.rsplit_once('.').unwrap();
    use p256::ecdsa::signature::Verifier;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64.decode(k).unwrap())
        .unwrap()
        .verify(
            signing_input.as_bytes(),
            &p256::ecdsa::Signature::from_slice(&b64.decode(sig).unwrap()).unwrap(),
        )
        .expect("the JWT verifies");
    let claims: serde_json::Value = serde_json::from_slice(
        &b64.decode(signing_input.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], service.url);

    // The endpoints that answered 410 and 404 are gone; the good one stays.
    let until = Instant::now() + WAIT;
    while list(&ann).await.len() != 1 {
        assert!(Instant::now() < until, "dead endpoints not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(list(&ann).await, std::slice::from_ref(&endpoint));

    // Unsubscribed: nothing more arrives there.
    let r = http
        .delete(api("/v1/push/subscriptions"))
        .bearer_auth(ann.token().unwrap())
        .json(&serde_json::json!({ "endpoint": endpoint }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(list(&ann).await.is_empty());
    admin.follow("ann").await.unwrap();
    wait_kind(&ann, NotificationKind::FollowedYou, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(service.count("ann"), 1);

    // Quiet hours in the member's zone: the feed gets it, the phone does not; after them,
    // pushes flow again.
    let r = subscribe(&ann, phone.request(&endpoint)).await.unwrap();
    assert_eq!(r.status(), 201);
    let tokyo_hour = (ruang_server::store::now_ms() / 3_600_000 + 9).rem_euclid(24);
    let quiet = ruang_proto::QuietHours {
        start: format!("{:02}:00", (tokyo_hour + 23) % 24),
        end: format!("{:02}:00", (tokyo_hour + 1) % 24),
    };
    let s = ann
        .set_notification_settings(&NotificationSettings {
            quiet_hours: Some(quiet.clone()),
            time_zone: Some("Asia/Tokyo".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.quiet_hours.as_ref(), Some(&quiet));
    let cat = srv.member(&admin, "cat").await;
    cat.follow("ann").await.unwrap();
    wait_kind(&ann, NotificationKind::FollowedYou, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(service.count("ann"), 1, "held back in quiet hours");
    for (bad_hours, tz) in [
        (Some(("25:00", "07:00")), "UTC"),
        (Some(("07:00", "07:00")), "UTC"),
        (None, "Mars/Base"),
    ] {
        let err = ann
            .set_notification_settings(&NotificationSettings {
                quiet_hours: bad_hours.map(|(a, b)| ruang_proto::QuietHours {
                    start: a.into(),
                    end: b.into(),
                }),
                time_zone: Some(tz.into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(code(err), Some(ErrorCode::InvalidField));
    }
    assert_eq!(
        ann.notification_settings().await.unwrap().quiet_hours,
        Some(quiet),
        "a refused change changes nothing"
    );
    ann.set_notification_settings(&NotificationSettings::default())
        .await
        .unwrap();
    let dan = srv.member(&admin, "dan").await;
    dan.follow("ann").await.unwrap();
    let until = Instant::now() + WAIT;
    while service.count("ann") < 2 {
        assert!(Instant::now() < until, "no push after the quiet hours");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
each_backend!(
    push_encrypted_to_a_loopback_endpoint_dead_ones_removed,
    push
);

/// Joins `room` as `c` on a raw WebSocket (so the test can drop it without `leave`, as a
/// phone that lost the network or closed the app does) and returns it after `welcome`.
async fn join_raw(c: &ApiClient, room: &str) -> ruang_tests::ws::Ws {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(c.ws_url(room).to_string())
        .await
        .unwrap();
    let hello = serde_json::json!({"type":"hello","protocol":1,"token":c.token().unwrap()});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    assert!(matches!(
        ruang_tests::ws::next_msg(&mut ws).await,
        ruang_proto::ServerMessage::Welcome { .. }
    ));
    ws
}

async fn invited_away(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.rejoin_grace = Duration::from_millis(1500)).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let bob = srv.member(&admin, "bob").await;
    let cat = srv.member(&admin, "cat").await;
    cat.set_notification_settings(&NotificationSettings {
        muted_kinds: vec![NotificationKind::InvitedToSpeak],
        ..Default::default()
    })
    .await
    .unwrap();
    let room = admin
        .create_room("Late night", RoomKind::Open)
        .await
        .unwrap();
    let rid = room.id.as_str();
    let host = srv.join(&admin, rid).await;
    let ann_id = ann.me().await.unwrap().id;
    let bob_id = bob.me().await.unwrap().id;
    let cat_id = cat.me().await.unwrap().id;
    let ann_ws = join_raw(&ann, rid).await;
    let bob_session = srv.join(&bob, rid).await;
    let cat_ws = join_raw(&cat, rid).await;
    host.wait_for(WAIT, |s| {
        [&ann_id, &bob_id, &cat_id]
            .iter()
            .all(|u| s.room.participant(u).is_some())
    })
    .await
    .unwrap();

    // Ann and Cat close the app (the socket goes, no `leave`); Bob is still connected.
    drop(ann_ws);
    drop(cat_ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for u in [&ann_id, &bob_id, &cat_id] {
        host.invite_to_speak(u).await.unwrap();
    }
    wait_kind(&ann, NotificationKind::InvitedToSpeak, 1).await;
    let n = ann
        .notifications(None, Some(10))
        .await
        .unwrap()
        .notifications;
    let n = n
        .iter()
        .find(|n| n.kind == NotificationKind::InvitedToSpeak)
        .unwrap();
    assert_eq!(n.text, "ROOT invited you to speak in “Late night”");
    assert_eq!(n.link, format!("{}/r/{rid}", srv.url));
    assert_eq!(n.room_id.as_ref().map(|r| r.as_str()), Some(rid));
    assert_eq!(n.actor.as_ref().unwrap().handle, "root");
    bob_session
        .wait_for(WAIT, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .expect("a connected member is told in the room");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kinds = |f: Vec<(NotificationKind, String)>| {
        f.iter()
            .filter(|(k, _)| *k == NotificationKind::InvitedToSpeak)
            .count()
    };
    assert_eq!(
        kinds(feed(&bob).await),
        0,
        "no notification while connected"
    );
    assert_eq!(kinds(feed(&cat).await), 0, "muted kind: nothing");

    // Inviting again (still pending) makes no second notification.
    host.invite_to_speak(&ann_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kinds(feed(&ann).await), 1);

    // Past the grace period Ann is out of the room, but the invitation waits: opening the
    // notification's room later, she is invited and can go on stage.
    host.wait_for(WAIT, |s| s.room.participant(&ann_id).is_none())
        .await
        .expect("dropped after the grace period");
    let back = srv.join(&ann, rid).await;
    let s = back
        .wait_for(WAIT, |s| s.room.room.is_some())
        .await
        .unwrap();
    assert!(s.room.room.as_ref().unwrap().invited_to_speak);
    back.accept_invite().await.unwrap();
    host.wait_for(WAIT, |s| {
        s.room
            .participant(&ann_id)
            .is_some_and(|p| p.role == Role::Speaker)
    })
    .await
    .expect("Ann on stage");
}
each_backend!(
    invited_to_speak_after_leaving_notifies_and_waits,
    invited_away
);

/// A browser's "Notify me" on an `/e/` page, without an account: the subscription is tied to
/// the event; changes, the start and a cancellation are pushed to it (encrypted for it).
async fn browser_notify_me(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.push_allow_http = true).await;
    let admin = srv.admin("root").await;
    let service = PushService::start().await;
    let http = reqwest::Client::new();
    let url = |e: &str| format!("{}/v1/events/{e}/web-push", srv.url);
    let one = admin
        .create_event(&CreateEventRequest {
            title: "Open mic".into(),
            starts_at: soon(120),
            ..Default::default()
        })
        .await
        .unwrap();
    let two = admin
        .create_event(&CreateEventRequest {
            title: "Poetry".into(),
            starts_at: soon(180),
            ..Default::default()
        })
        .await
        .unwrap();
    // The page offers it (button + script) while the room is still to come.
    let page = |e: &str| {
        let req = http.get(format!("{}/e/{e}", srv.url));
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let html = page(&one.id).await;
    assert!(html.contains("id=\"notify\""), "{html}");
    assert!(html.contains("../web/notify.js?v="));
    for (path, cache) in [("/web/notify.js", "max-age"), ("/web/sw.js", "no-cache")] {
        let r = http.get(format!("{}{path}", srv.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains(cache));
    }
    // A live room's page points at its host's next (open) scheduled rooms, where Notify me is.
    let closed = admin
        .create_event(&CreateEventRequest {
            title: "Members only".into(),
            starts_at: soon(150),
            kind: RoomKind::Closed,
            ..Default::default()
        })
        .await
        .unwrap();
    let live = admin.create_room("Warm-up", RoomKind::Open).await.unwrap();
    let _host = srv.join(&admin, live.id.as_str()).await;
    let room_page = http
        .get(format!("{}/r/{}", srv.url, live.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(room_page.contains("Next from ROOT"), "{room_page}");
    assert!(room_page.contains(&format!("href=\"../e/{}\"", one.id)));
    assert!(room_page.contains(&format!("href=\"../e/{}\"", two.id)));
    assert!(room_page.contains("Notify me about Open mic"));
    assert!(!room_page.contains(&closed.id), "closed events stay hidden");
    let browser = Receiver::new(3);
    let post = |e: &str, body: serde_json::Value| http.post(url(e)).json(&body).send();
    // No account needed; registering again is the same subscription.
    for _ in 0..2 {
        let r = post(&one.id, browser.request(&format!("{}/ok/one", service.url)))
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // Bad input: unknown or malformed events, junk, bad keys. Clear errors.
    let ok_body = browser.request(&format!("{}/ok/x", service.url));
    for (e, body, status) in [
        ("nosuchevent", ok_body.clone(), 404),
        ("../../etc", ok_body.clone(), 404),
        (one.id.as_str(), serde_json::json!({"endpoint": 5}), 400),
        (
            one.id.as_str(),
            serde_json::json!({"endpoint": "ftp://x.example/", "keys": {"p256dh": "x", "auth": "y"}}),
            400,
        ),
    ] {
        let r = post(e, body).await.unwrap();
        assert_eq!(r.status(), status, "event {e}");
    }
    let stays = Receiver::new(4);
    let leaves = Receiver::new(5);
    for (r, name) in [(&stays, "stays"), (&leaves, "leaves")] {
        let resp = post(&two.id, r.request(&format!("{}/ok/{name}", service.url)))
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    let resp = http
        .delete(url(&two.id))
        .json(&serde_json::json!({"endpoint": format!("{}/ok/leaves", service.url)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let wait = |name: &'static str, n: usize| {
        let service = &service;
        async move {
            let until = Instant::now() + WAIT;
            while service.count(name) < n {
                assert!(Instant::now() < until, "no push #{n} to {name}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let read = |name: &str, i: usize, r: &Receiver| -> ruang_proto::Notification {
        let got = service.got.lock().unwrap();
        let (_, headers, body) = got.iter().filter(|(n, _, _)| n == name).nth(i).unwrap();
        assert_eq!(headers["content-encoding"], "aes128gcm");
        let plain = ruang_server::service::push::decrypt(body, &r.secret, &r.auth)
            .expect("decrypts with the browser's key");
        serde_json::from_slice(&plain).unwrap()
    };

    // The host renames it: the browser hears, once.
    admin
        .update_event(
            &one.id,
            &UpdateEventRequest {
                title: Some("Open mic night".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait("one", 1).await;
    let n = read("one", 0, &browser);
    assert_eq!(n.kind, NotificationKind::EventChanged);
    assert_eq!(n.text, "“Open mic night” was changed");
    assert_eq!(n.link, format!("{}/e/{}", srv.url, one.id));
    assert_eq!(n.actor.unwrap().handle, "root");

    // The host starts it: "is live now" with the room's link, and then nothing more to say
    // (asking again about a started room is refused).
    let room = admin.start_event(&one.id).await.unwrap();
    wait("one", 2).await;
    let n = read("one", 1, &browser);
    assert_eq!(n.kind, NotificationKind::EventStarted);
    assert_eq!(n.text, "“Open mic night” is live now");
    assert_eq!(n.link, format!("{}/r/{}", srv.url, room.id));
    let r = post(&one.id, browser.request(&format!("{}/ok/one", service.url)))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = page(&one.id).await;
    assert!(!html.contains("id=\"notify\"") && !html.contains("notify.js"));

    // The other is cancelled: only the browser that stayed hears.
    admin.cancel_event(&two.id).await.unwrap();
    wait("stays", 1).await;
    let n = read("stays", 0, &stays);
    assert_eq!(n.kind, NotificationKind::EventCancelled);
    assert_eq!(n.text, "“Poetry” was cancelled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(service.count("leaves"), 0, "unsubscribed");
    assert_eq!(service.count("one"), 2, "nothing after the start");

    // Each subscription attempt counts against the address: a flood is cut off.
    let mut limited = false;
    for _ in 0..30 {
        let r = post(&two.id, serde_json::json!({})).await.unwrap();
        if r.status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "20 a minute per address");
}
each_backend!(
    browser_notify_me_on_event_pages_is_pushed_changes_start_and_cancel,
    browser_notify_me
);

/// Every node of a cluster looks for due reminders: each event's reminder is taken by one
/// look only, however many run at once (each on its own connection to the database).
async fn reminders_are_taken_once(backend: Backend) {
    let srv = TestServer::start_with(backend, |c| {
        // The server's own loop leaves the event alone (it is not due for it).
        c.event_reminder_lead = Duration::from_secs(0);
    })
    .await;
    let ann = srv.admin("ann").await;
    let event = ann
        .create_event(&CreateEventRequest {
            title: "Once".into(),
            starts_at: soon(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let url = srv
        .config
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", srv.dir.path().join("ruang.db").display()));
    let mut looks = Vec::new();
    for _ in 0..4 {
        let store = ruang_server::store::Store::connect(&url).await.unwrap();
        looks.push(tokio::spawn(async move {
            store
                .take_due_reminders(ruang_server::store::now_ms() + 3_600_000)
                .await
                .unwrap()
        }));
    }
    let mut taken = Vec::new();
    for l in looks {
        taken.extend(l.await.unwrap());
    }
    assert_eq!(
        taken,
        vec![event.id.as_str().to_owned()],
        "taken exactly once"
    );
}

each_backend!(
    reminders_are_taken_once_across_nodes,
    reminders_are_taken_once
);
