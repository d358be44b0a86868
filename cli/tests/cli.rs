//! The `ruang` binary as a user runs it: serve, signup, invites, room create, rooms,
//! errors on stderr with a non-zero exit, and a graceful stop on SIGTERM.

mod common;

use common::{free_port, Serve, RUANG};
use std::process::Command;

fn ruang(server: &str, args: &[&str]) -> std::process::Output {
    Command::new(RUANG)
        .args(args)
        .env("RUANG_SERVER", server)
        .env_remove("RUANG_TOKEN")
        .output()
        .expect("ruang runs")
}

fn stdout_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn cli_contract_and_graceful_stop() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let serve = Serve::start(data.path(), port, &[]);
    let code = serve.first_invite();
    let file = std::fs::read_to_string(data.path().join("first-invite.txt")).unwrap();
    assert_eq!(file.trim(), code);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("first-invite.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // signup prints the token only.
    let token = stdout_ok(&ruang(
        &server,
        &["signup", "--invite", &code, "--handle", "admin"],
    ));
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));

    // invites: one code per line.
    let codes = stdout_ok(&ruang(&server, &["invites", "--token", &token]));
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(codes.len(), 5);

    // A member signs up with a shared code.
    let member = stdout_ok(&ruang(
        &server,
        &[
            "signup", "--invite", codes[0], "--handle", "member", "--name", "Mem Ber",
        ],
    ));

    // room create prints the id only; rooms lists it, id first.
    let room = stdout_ok(&ruang(
        &server,
        &[
            "room", "create", "--title", "CLI room", "--kind", "open", "--token", &token,
        ],
    ));
    assert!(!room.contains(char::is_whitespace));
    let rooms = stdout_ok(&ruang(&server, &["rooms", "--token", &member]));
    assert!(rooms
        .lines()
        .next()
        .unwrap()
        .starts_with(&format!("{room}\t")));
    assert!(rooms.contains("CLI room"));

    // Errors: non-zero exit and one line on stderr.
    let bad = ruang(
        &server,
        &["signup", "--invite", codes[0], "--handle", "again"],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("invalid_invite"), "{err}");
    let no_token = ruang(&server, &["rooms"]);
    assert!(!no_token.status.success());

    // SIGTERM: graceful stop with exit 0.
    let mut serve = serve;
    serve.signal("-TERM");
    serve.wait_line("stopped cleanly");
    let status = serve.child.wait().unwrap();
    assert!(status.success());

    // Restart: nothing lost, no new admin invite.
    let serve = Serve::start(data.path(), port, &[]);
    serve.wait_line("listening");
    let rooms = stdout_ok(&ruang(&server, &["rooms", "--token", &member]));
    assert!(rooms.starts_with(&room));
    let codes_after = stdout_ok(&ruang(&server, &["invites", "--token", &token]));
    assert_eq!(codes_after.lines().count(), 4);
}
