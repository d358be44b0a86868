//! The pages behind shared links (`/r/ROOM`, `/i/CODE`) and their assets: status codes,
//! escaping, Open Graph tags, security headers, and pages that never reveal which closed
//! rooms or invite codes exist.

use ruang_client::ApiClient;
use ruang_proto::RoomKind;
use ruang_tests::{each_backend, Backend, TestServer, WAIT};

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(srv: &TestServer, path: &str) -> Page {
    let resp = reqwest::get(format!("{}{path}", srv.url)).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    Page {
        status,
        headers,
        body,
    }
}

fn header<'a>(p: &'a Page, name: &str) -> &'a str {
    p.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Every page is HTML with a strict CSP and no caching of live content.
fn assert_html(p: &Page) {
    assert_eq!(header(p, "content-type"), "text/html; charset=utf-8");
    let csp = header(p, "content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("connect-src 'self' ws://127.0.0.1:"), "{csp}");
    assert_eq!(header(p, "cache-control"), "no-store");
    assert_eq!(header(p, "referrer-policy"), "no-referrer");
    assert!(p.body.starts_with("<!doctype html>"));
    assert!(p.body.contains("<meta name=\"viewport\""));
    // No inline script or style anywhere (the CSP would block it anyway).
    assert!(!p.body.contains("<script>") && !p.body.contains("<style"));
}

fn og<'a>(p: &'a Page, prop: &str) -> &'a str {
    let key = format!("<meta property=\"og:{prop}\" content=\"");
    let start = p
        .body
        .find(&key)
        .unwrap_or_else(|| panic!("og:{prop} missing"))
        + key.len();
    let end = p.body[start..].find('"').unwrap() + start;
    &p.body[start..end]
}

async fn room_pages(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut maya = srv.anon();
    maya.signup(&srv.first_invite, "maya", "Maya <b>&amp;</b>")
        .await
        .unwrap();
    let title = "Coffee <script>alert(1)</script> & \"jazz\"";
    let open = maya.create_room(title, RoomKind::Open).await.unwrap();
    let host = srv.join(&maya, open.id.as_str()).await;

    let p = get(&srv, &format!("/r/{}", open.id.as_str())).await;
    assert_eq!(p.status, 200);
    assert_html(&p);
    assert!(!p.body.contains("<script>alert"), "title escaped");
    assert!(p.body.contains(
        "<h1 id=\"title\">Coffee &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;jazz&quot;</h1>"
    ));
    assert!(
        p.body.contains("Maya &lt;b&gt;&amp;amp;&lt;/b&gt;"),
        "name escaped"
    );
    assert_eq!(
        og(&p, "title"),
        "Coffee &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;jazz&quot;"
    );
    assert_eq!(og(&p, "url"), open.link);
    assert_eq!(og(&p, "type"), "website");
    assert!(og(&p, "description").contains("Maya &lt;b&gt;"));
    assert!(p.body.contains("aria-live=\"polite\""));
    assert!(p.body.contains("data-listen=\"0\""));
    assert!(p
        .body
        .contains("<a id=\"open-app\" class=\"button\" href=\""));
    assert!(p
        .body
        .contains(&format!("href=\"ruang://r/{}\"", open.id.as_str())));
    assert!(p.body.contains("src=\"../web/room.js?v="));

    // A trailing slash redirects to the page (keeping the query).
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/r/{}/?listen=1", srv.url, open.id.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 308);
    let p = get(&srv, &format!("/r/{}/?listen=1", open.id.as_str())).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("data-listen=\"1\""));

    // ?listen=1 autostarts; junk in the query string is ignored.
    let p = get(&srv, &format!("/r/{}?listen=1", open.id.as_str())).await;
    assert!(p.body.contains("data-listen=\"1\""));
    let p = get(
        &srv,
        &format!("/r/{}?%ZZ&&=&t&listen=yes&x=%00", open.id.as_str()),
    )
    .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("data-listen=\"0\""));
    let junk = format!("%22%3E%3Cscript%3E{}", "a".repeat(10_000));
    let p = get(&srv, &format!("/r/{}?t={junk}", open.id.as_str())).await;
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("data-link-token=\"\""),
        "junk tokens are not echoed"
    );

    // Unknown rooms and malformed ids: one clear page, 404.
    let missing = get(&srv, "/r/nosuchroom").await;
    assert_eq!(missing.status, 404);
    assert_html(&missing);
    assert!(missing.body.contains("This room isn't available"));
    for path in [
        format!("/r/{}", "x".repeat(5000)),
        "/r/%C3%A9t%C3%A9".to_owned(),
        "/r/..%2F..%2Fetc".to_owned(),
        "/r/%3Cscript%3E".to_owned(),
        "/r/".to_owned(),
        "/r/abc/def/../x".to_owned(),
    ] {
        let p = get(&srv, &path).await;
        assert_eq!((p.status, &p.body), (404, &missing.body), "{path}");
    }

    // A closed room without its key looks exactly like an unknown room.
    let closed = maya
        .create_room("Secret plans", RoomKind::Closed)
        .await
        .unwrap();
    let _closed_host = srv.join(&maya, closed.id.as_str()).await;
    let key = closed.link.split("?t=").nth(1).unwrap().to_owned();
    for q in ["".to_owned(), "?t=wrong".to_owned(), "?t=".to_owned()] {
        let p = get(&srv, &format!("/r/{}{q}", closed.id.as_str())).await;
        assert_eq!((p.status, &p.body), (404, &missing.body), "{q}");
    }
    let p = get(&srv, &format!("/r/{}?t={key}", closed.id.as_str())).await;
    assert_eq!(p.status, 200);
    assert_eq!(og(&p, "url"), closed.link);
    assert!(p.body.contains(&format!("data-link-token=\"{key}\"")));
    assert!(p.body.contains(&format!(
        "href=\"ruang://r/{}?t={key}\"",
        closed.id.as_str()
    )));

    // Ended rooms: 410 with the title (closed ones only with their key).
    host.end_room().await.unwrap();
    _closed_host.end_room().await.unwrap();
    let ended = wait_status(&srv, &format!("/r/{}", open.id.as_str()), 410).await;
    assert_html(&ended);
    assert!(ended.body.contains("has ended"));
    assert!(ended.body.contains("Coffee &lt;script&gt;"));
    let p = wait_status(&srv, &format!("/r/{}?t={key}", closed.id.as_str()), 410).await;
    assert!(p.body.contains("Secret plans"));
    let p = get(&srv, &format!("/r/{}", closed.id.as_str())).await;
    assert_eq!((p.status, &p.body), (404, &missing.body));

    // The page's assets.
    let js = get(&srv, "/web/room.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(
        header(&js, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert!(header(&js, "cache-control").contains("max-age"));
    assert!(js.body.contains("media_offer"));
    let css = get(&srv, "/web/room.css").await;
    assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");
}
each_backend!(
    room_pages_are_clear_escaped_and_hide_closed_rooms,
    room_pages
);

/// Polls until `path` answers `status` (ending a room reaches the store asynchronously).
async fn wait_status(srv: &TestServer, path: &str, status: u16) -> Page {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = get(srv, path).await;
        if p.status == status || tokio::time::Instant::now() > deadline {
            assert_eq!(p.status, status, "{path}: {}", p.body);
            return p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn invite_pages(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.auth_failures_per_minute = 8).await;
    let mut maya = srv.anon();
    maya.signup(&srv.first_invite, "maya", "Maya \"M\" <Sari>")
        .await
        .unwrap();
    let codes = maya.invites().await.unwrap();

    let p = get(&srv, &format!("/i/{}", codes[0].code)).await;
    assert_eq!(p.status, 200);
    assert_html(&p);
    assert!(
        p.body.contains("Maya &quot;M&quot; &lt;Sari&gt;"),
        "inviter escaped"
    );
    assert!(p.body.contains("@maya"));
    assert_eq!(og(&p, "url"), codes[0].link);
    assert!(p
        .body
        .contains(&format!("href=\"ruang://i/{}\"", codes[0].code)));
    // A code as people type it (dashes, capitals) is the same invitation.
    let typed = codes[0]
        .code
        .to_uppercase()
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("-");
    assert_eq!(get(&srv, &format!("/i/{typed}")).await.status, 200);
    assert_eq!(get(&srv, &format!("/i/{typed}/")).await.status, 200);

    // Used, revoked, unknown and malformed codes: the very same page.
    let mut used = ApiClient::new(&srv.url).unwrap();
    used.signup(&codes[1].code, "budi", "Budi").await.unwrap();
    maya.revoke_invite(&codes[2].code).await.unwrap();
    let unknown = get(&srv, "/i/aaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!(unknown.status, 404);
    assert_html(&unknown);
    assert!(unknown.body.contains("This invitation can't be used"));
    for path in [
        format!("/i/{}", codes[1].code),
        format!("/i/{}", codes[2].code),
        format!("/i/{}", "z".repeat(4000)),
        "/i/%3Cscript%3E".to_owned(),
        "/i/".to_owned(),
        format!("/i/{}/more", codes[3].code),
    ] {
        let p = get(&srv, &path).await;
        assert_eq!((p.status, &p.body), (404, &unknown.body), "{path}");
        assert!(!p.body.contains("script%3E") && !p.body.contains("<script>"));
    }

    // Guessing is rate limited like GET /v1/invites/CODE: even a good code gets 429 now.
    for _ in 0..8 {
        get(&srv, "/i/bbbbbbbbbbbbbbbbbbbb").await;
    }
    let p = get(&srv, &format!("/i/{}", codes[3].code)).await;
    assert_eq!(p.status, 429);
    assert_html(&p);
}
each_backend!(invite_pages_never_tell_which_codes_exist, invite_pages);
