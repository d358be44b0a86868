//! What the FFI tests share: a real server on its own runtime and a client of it.
#![allow(dead_code)] // each test file uses a different part

use ruang_ffi::{ClientConfig, RuangClient};
use std::sync::Arc;

/// Starts a real server on its own runtime (the FFI calls block, so tests are plain threads):
/// its URL, the admin invite, its data directory and the runtime that keeps it running.
pub fn server() -> (String, String, tempfile::TempDir, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ruang_server::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    let server = rt.block_on(ruang_server::Server::start(config)).unwrap();
    let url = server.public_url.clone();
    let code = server.first_invite.clone().unwrap();
    std::mem::forget(server); // lives as long as the runtime
    (url, code, dir, rt)
}

/// A client of `url` with a fresh data directory; `persist_session` keeps the token there.
pub fn client(url: &str, persist_session: bool) -> Arc<RuangClient> {
    let dir = tempfile::tempdir().unwrap().keep();
    RuangClient::new(ClientConfig {
        server_url: url.into(),
        data_dir: dir.to_string_lossy().into_owned(),
        user_agent: Some("ffi-tests".into()),
        persist_session,
    })
    .unwrap()
}
