//! What an encrypted room costs, measured on this machine: handshakes at a given room size
//! and SFrame per audio frame. Used by `ruang bench e2ee`.

use crate::{Device, E2eeError, MediaCrypto, RoomGroup};
use std::time::{Duration, Instant};

/// One room size's figures.
#[derive(Debug, Clone)]
pub struct HandshakeCost {
    pub members: usize,
    /// Building the room: the committer adding everyone, in commits of `join_batch`.
    pub build: Duration,
    pub join_batch: usize,
    /// Removing one listener: creating the commit (committer) and processing it (each member).
    pub remove_one_commit: Duration,
    pub remove_one_process: Duration,
    pub remove_one_bytes: usize,
    /// Removing a batch of 64 listeners in one commit.
    pub remove_batch_commit: Duration,
    pub remove_batch_process: Duration,
    pub remove_batch_bytes: usize,
    /// Adding one listener: the commit, its welcome, and the joiner processing the welcome
    /// (which carries the whole ratchet tree).
    pub add_one_commit: Duration,
    pub add_one_commit_bytes: usize,
    pub add_one_welcome_bytes: usize,
    pub add_one_join: Duration,
}

/// SFrame on one Opus frame.
#[derive(Debug, Clone)]
pub struct FrameCost {
    pub frame_bytes: usize,
    pub overhead_bytes: usize,
    pub encrypt: Duration,
    pub decrypt: Duration,
}

pub const REMOVE_BATCH: usize = 64;

/// Builds a room of `members` devices and measures its handshakes.
pub fn handshakes(members: usize, join_batch: usize) -> Result<HandshakeCost, E2eeError> {
    assert!(
        members > REMOVE_BATCH + 2,
        "a room larger than one removal batch"
    );
    let host = Device::new("host")?;
    let mut group = RoomGroup::create(&host, "bench")?;
    // One observer joins for real, to measure processing at a member.
    let observer = Device::new("observer")?;
    let others: Vec<Device> = (2..members)
        .map(|i| Device::new(&format!("m{i}")))
        .collect::<Result<_, _>>()?;

    let started = Instant::now();
    let first = group.commit(&host, &[("observer".into(), observer.key_package()?)], &[])?;
    group.confirm(&host)?;
    let mut observer_group = RoomGroup::join(&observer, first.welcome.as_deref().unwrap_or(&[]))?;
    for chunk in others.chunks(join_batch.max(1)) {
        let adds: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .map(|d| Ok((d.user().to_string(), d.key_package()?)))
            .collect::<Result<_, E2eeError>>()?;
        let hs = group.commit(&host, &adds, &[])?;
        group.confirm(&host)?;
        observer_group.process(&observer, &hs.commit)?;
    }
    let build = started.elapsed();

    let t = Instant::now();
    let hs = group.commit(&host, &[], &[others[0].user().to_string()])?;
    let remove_one_commit = t.elapsed();
    group.confirm(&host)?;
    let t = Instant::now();
    observer_group.process(&observer, &hs.commit)?;
    let remove_one_process = t.elapsed();
    let remove_one_bytes = hs.commit.len();

    let batch: Vec<String> = others[1..=REMOVE_BATCH]
        .iter()
        .map(|d| d.user().to_string())
        .collect();
    let t = Instant::now();
    let hs = group.commit(&host, &[], &batch)?;
    let remove_batch_commit = t.elapsed();
    group.confirm(&host)?;
    let t = Instant::now();
    observer_group.process(&observer, &hs.commit)?;
    let remove_batch_process = t.elapsed();
    let remove_batch_bytes = hs.commit.len();

    let newcomer = Device::new("newcomer")?;
    let kp = newcomer.key_package()?;
    let t = Instant::now();
    let hs = group.commit(&host, &[("newcomer".into(), kp)], &[])?;
    let add_one_commit = t.elapsed();
    group.confirm(&host)?;
    let welcome = hs.welcome.unwrap_or_default();
    let t = Instant::now();
    let joined = RoomGroup::join(&newcomer, &welcome)?;
    let add_one_join = t.elapsed();
    debug_assert_eq!(joined.epoch(), group.epoch());

    Ok(HandshakeCost {
        members,
        build,
        join_batch,
        remove_one_commit,
        remove_one_process,
        remove_one_bytes,
        remove_batch_commit,
        remove_batch_process,
        remove_batch_bytes,
        add_one_commit,
        add_one_commit_bytes: hs.commit.len(),
        add_one_welcome_bytes: welcome.len(),
        add_one_join,
    })
}

/// Encrypts and decrypts `rounds` frames of `frame_bytes` between two members.
pub fn frames(frame_bytes: usize, rounds: u32) -> Result<FrameCost, E2eeError> {
    let a = Device::new("a")?;
    let b = Device::new("b")?;
    let mut ga = RoomGroup::create(&a, "bench")?;
    let hs = ga.commit(&a, &[("b".into(), b.key_package()?)], &[])?;
    ga.confirm(&a)?;
    let gb = RoomGroup::join(&b, hs.welcome.as_deref().unwrap_or(&[]))?;
    let mut ma = MediaCrypto::new();
    let mut mb = MediaCrypto::new();
    ma.install(&ga, &a)?;
    mb.install(&gb, &b)?;
    let frame: Vec<u8> = (0..frame_bytes).map(|i| i as u8).collect();
    let mut cts = Vec::with_capacity(rounds as usize);
    let t = Instant::now();
    for _ in 0..rounds {
        let mut out = Vec::with_capacity(frame_bytes + 32);
        ma.encrypt(&frame, &mut out)?;
        cts.push(out);
    }
    let encrypt = t.elapsed() / rounds;
    let overhead_bytes = cts.first().map_or(0, |c| c.len() - frame_bytes);
    let mut out = Vec::with_capacity(frame_bytes + 32);
    let t = Instant::now();
    for ct in &cts {
        out.clear();
        mb.decrypt(ct, &mut out)?;
    }
    let decrypt = t.elapsed() / rounds;
    Ok(FrameCost {
        frame_bytes,
        overhead_bytes,
        encrypt,
        decrypt,
    })
}
