//! `ruang bench e2ee`: what an end-to-end encrypted room costs on this machine: SFrame per
//! audio frame (sender and receiver) and the MLS handshakes of rooms of given sizes (creating
//! and processing a commit that removes one or a batch of listeners, adding one, the joiner's
//! welcome). The figures of docs/benchmarks.md's "Encrypted rooms" section.

use anyhow::{anyhow, Result};
use ruang_e2ee::cost;

#[derive(clap::Args)]
pub struct E2eeArgs {
    /// Room sizes (devices in the group) to measure handshakes at.
    #[arg(long, value_delimiter = ',', default_value = "100,2000")]
    members: Vec<usize>,
    /// Joiners added per commit while the room fills (the rekey policy's join batching).
    #[arg(long, default_value_t = 50)]
    join_batch: usize,
    /// Opus frame size for the SFrame figures (80 B: 20 ms at 32 kbit/s).
    #[arg(long, default_value_t = 80)]
    frame_bytes: usize,
}

pub fn e2ee(args: E2eeArgs) -> Result<()> {
    let f = cost::frames(args.frame_bytes, 20_000).map_err(|e| anyhow!("{e}"))?;
    println!(
        "SFrame, {} B Opus frame: +{} B per frame, encrypt {:.1} µs, decrypt {:.1} µs",
        f.frame_bytes,
        f.overhead_bytes,
        f.encrypt.as_secs_f64() * 1e6,
        f.decrypt.as_secs_f64() * 1e6
    );
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "| members | fill (commits of {}) | remove 1: commit / process / size | remove {}: commit / process / size | add 1: commit / size | welcome size | join |",
        args.join_batch,
        cost::REMOVE_BATCH
    );
    println!("|---|---|---|---|---|---|---|");
    for n in args.members {
        if n <= cost::REMOVE_BATCH + 2 {
            eprintln!("skipping {n}: a room must be larger than one removal batch");
            continue;
        }
        eprintln!("building a room of {n} devices…");
        let c = cost::handshakes(n, args.join_batch).map_err(|e| anyhow!("{e}"))?;
        println!(
            "| {} | {:.0} ms | {:.1} ms / {:.1} ms / {} B | {:.1} ms / {:.1} ms / {} B | {:.1} ms / {} B | {} B | {:.1} ms |",
            c.members,
            ms(c.build),
            ms(c.remove_one_commit),
            ms(c.remove_one_process),
            c.remove_one_bytes,
            ms(c.remove_batch_commit),
            ms(c.remove_batch_process),
            c.remove_batch_bytes,
            ms(c.add_one_commit),
            c.add_one_commit_bytes,
            c.add_one_welcome_bytes,
            ms(c.add_one_join),
        );
    }
    Ok(())
}
