//! `cargo run --release -p ruang-e2ee --example cost -- 100 2000`: the figures of
//! docs/benchmarks.md's "Encrypted rooms" section (also `ruang bench e2ee`).

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 2000]
    } else {
        sizes
    };
    let f = ruang_e2ee::cost::frames(80, 20_000).expect("frames");
    println!(
        "SFrame on a {} B Opus frame: +{} B, encrypt {:.1} µs, decrypt {:.1} µs",
        f.frame_bytes,
        f.overhead_bytes,
        f.encrypt.as_secs_f64() * 1e6,
        f.decrypt.as_secs_f64() * 1e6
    );
    for n in sizes {
        let c = ruang_e2ee::cost::handshakes(n, 50).expect("handshakes");
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "members {n}: build {:.0} ms (commits of {})",
            ms(c.build),
            c.join_batch
        );
        println!(
            "  remove 1:  commit {:.2} ms, process {:.2} ms, {} B",
            ms(c.remove_one_commit),
            ms(c.remove_one_process),
            c.remove_one_bytes
        );
        println!(
            "  remove {}: commit {:.2} ms, process {:.2} ms, {} B",
            ruang_e2ee::cost::REMOVE_BATCH,
            ms(c.remove_batch_commit),
            ms(c.remove_batch_process),
            c.remove_batch_bytes
        );
        println!(
            "  add 1:     commit {:.2} ms ({} B), welcome {} B, join {:.2} ms",
            ms(c.add_one_commit),
            c.add_one_commit_bytes,
            c.add_one_welcome_bytes,
            ms(c.add_one_join)
        );
    }
}
