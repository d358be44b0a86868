//! The core's own tokio runtime. FFI calls block on it from the caller's (foreign)
//! thread; listeners are called from plain threads outside it, so a listener may call back
//! into the FFI without deadlocking or panicking.

use std::future::Future;
use std::sync::OnceLock;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ruang-core")
            // The WebRTC transport runs here: its packets must not wait behind the app's UI
            // and other work (the audio engine has its own, higher-priority thread).
            .on_thread_start(|| {
                ruang_media::rt::raise_network_thread();
            })
            .enable_all()
            .build()
            .expect("the core runtime starts")
    })
}

/// Runs `f` to completion. Called from foreign threads (never from a runtime thread).
pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

pub fn handle() -> tokio::runtime::Handle {
    runtime().handle().clone()
}
