use super::*;

const LOUD: Option<u8> = Some(10); // −10 dBov
const MID: Option<u8> = Some(30); // −30 dBov
const QUIET: Option<u8> = Some(50); // −50 dBov
const SILENT: Option<u8> = Some(127);

/// Packets of one speaker every 20 ms with RTP times following the clock.
struct Talk {
    peer: PeerId,
    rtp: u64,
}

impl Talk {
    fn new(peer: PeerId, rtp: u64) -> Self {
        Talk { peer, rtp }
    }
    fn send(&mut self, f: &mut RoomForwarder, level: Option<u8>, now: i64) -> Vec<Forward> {
        let mut out = Vec::new();
        f.on_packet(self.peer, level, self.rtp, now, &mut out);
        self.rtp += FRAME_TICKS;
        out
    }
}

fn to(out: &[Forward]) -> Vec<PeerId> {
    let mut v: Vec<PeerId> = out.iter().map(|f| f.to).collect();
    v.sort();
    v
}

fn room(limit: usize) -> RoomForwarder {
    RoomForwarder::new(ForwardConfig {
        forward_limit: limit,
        ..ForwardConfig::default()
    })
}

#[test]
fn loudness_scale() {
    assert_eq!(loudness_from_dbov(0), 1.0);
    assert!((loudness_from_dbov(30) - 0.5).abs() < 1e-6);
    assert_eq!(loudness_from_dbov(60), 0.0);
    assert_eq!(loudness_from_dbov(127), 0.0);
}

#[test]
fn only_audible_senders_are_forwarded_and_never_to_themselves() {
    let mut f = room(4);
    // 1 speaker, 2 and 3 listeners; everyone has 4 slots.
    for p in [1, 2, 3] {
        f.add_peer(p, 4);
    }
    f.set_audible(1, true);
    let mut out = Vec::new();
    assert_eq!(f.on_packet(1, LOUD, 0, 0, &mut out), Verdict::Forwarded(2));
    assert_eq!(to(&out), vec![2, 3], "never echoed back to the speaker");
    // A listener's packets go nowhere, whatever the client sends.
    assert_eq!(f.on_packet(2, LOUD, 0, 0, &mut out), Verdict::NotAudible);
    assert!(out.is_empty());
    assert_eq!(f.on_packet(9, LOUD, 0, 0, &mut out), Verdict::UnknownPeer);
}

#[test]
fn demoted_or_muted_speaker_is_dropped_from_the_next_packet() {
    let mut f = room(4);
    f.add_peer(1, 0);
    f.add_peer(2, 4);
    f.set_audible(1, true);
    let mut s = Talk::new(1, 1000);
    assert_eq!(to(&s.send(&mut f, LOUD, 0)), vec![2]);
    assert_eq!(to(&s.send(&mut f, LOUD, 20)), vec![2]);
    // Muted (or moved to the audience): the very next packet is dropped.
    f.set_audible(1, false);
    let mut out = Vec::new();
    assert_eq!(
        f.on_packet(1, LOUD, 5000, 40, &mut out),
        Verdict::NotAudible
    );
    assert!(out.is_empty());
    // Unmuted again: forwarded on the same slot, timestamps still growing.
    f.set_audible(1, true);
    let before = f.level(1);
    assert!(before > 0.0);
    let out = s.send(&mut f, LOUD, 60);
    assert_eq!(to(&out), vec![2]);
}

#[test]
fn removed_peer_stops_sending_and_receiving() {
    let mut f = room(4);
    f.add_peer(1, 4);
    f.add_peer(2, 4);
    f.set_audible(1, true);
    f.set_audible(2, true);
    let mut a = Talk::new(1, 0);
    assert_eq!(to(&a.send(&mut f, LOUD, 0)), vec![2]);
    f.remove_peer(2);
    assert!(a.send(&mut f, LOUD, 20).is_empty());
    let mut out = Vec::new();
    assert_eq!(f.on_packet(2, LOUD, 0, 40, &mut out), Verdict::UnknownPeer);
}

#[test]
fn loudest_speakers_win_with_hysteresis() {
    // One listener (peer 10) with 2 slots, four speakers.
    let mut f = room(4);
    f.add_peer(10, 2);
    let mut talks: Vec<Talk> = (1..=4).map(|p| Talk::new(p, p * 100_000)).collect();
    for p in 1..=4 {
        f.add_peer(p, 0);
        f.set_audible(p, true);
    }
    let mut now = 0;
    // 1 and 2 speak quietly first and take both slots.
    for _ in 0..5 {
        assert_eq!(to(&talks[0].send(&mut f, QUIET, now)), vec![10]);
        assert_eq!(to(&talks[1].send(&mut f, QUIET, now)), vec![10]);
        now += 20;
    }
    // 3 is a bit louder, but not by the margin: no slot.
    assert!(talks[2].send(&mut f, Some(47), now).is_empty());
    // 4 is much louder, but the slots were held for less than hold_ms (500 ms).
    assert!(now < 500);
    assert!(talks[3].send(&mut f, LOUD, now).is_empty());
    // After the hold time, 4 takes the quietest slot; 3 still does not.
    while now < 600 {
        now += 20;
        talks[0].send(&mut f, QUIET, now);
        talks[1].send(&mut f, Some(55), now); // 2 is now the quietest
        assert!(talks[2].send(&mut f, Some(52), now).is_empty());
    }
    let out = talks[3].send(&mut f, LOUD, now);
    assert_eq!(to(&out), vec![10]);
    assert_eq!(out[0].slot, 1, "took speaker 2's slot");
    // 2 lost its slot; 1 kept its own.
    assert!(talks[1].send(&mut f, Some(55), now + 20).is_empty());
    assert_eq!(to(&talks[0].send(&mut f, QUIET, now + 20)), vec![10]);
    // A loud 3 replaces the quietest slot that was held long enough (1's), not 4's.
    let out = talks[2].send(&mut f, LOUD, now + 40);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].slot, 0);
    // Both slots are now fresh: even a loud 1 has to wait.
    assert!(talks[0].send(&mut f, LOUD, now + 60).is_empty());
    assert!(talks[0].send(&mut f, LOUD, now + 80).is_empty());
}

#[test]
fn forward_limit_caps_slots() {
    let mut f = room(1);
    f.add_peer(10, 4); // asks for 4, gets 1 (the limit)
    for p in 1..=2 {
        f.add_peer(p, 0);
        f.set_audible(p, true);
    }
    let mut a = Talk::new(1, 0);
    let mut b = Talk::new(2, 0);
    assert_eq!(to(&a.send(&mut f, MID, 0)), vec![10]);
    assert!(b.send(&mut f, MID, 0).is_empty());
}

#[test]
fn quiet_or_gone_speaker_frees_the_slot() {
    let mut f = room(4);
    f.add_peer(10, 1);
    for p in 1..=2 {
        f.add_peer(p, 0);
        f.set_audible(p, true);
    }
    let mut a = Talk::new(1, 0);
    let mut b = Talk::new(2, 0);
    assert_eq!(to(&a.send(&mut f, LOUD, 0)), vec![10]);
    assert!(b.send(&mut f, LOUD, 20).is_empty());
    // 1 stops sending (muted client, DTX with no packets, gone): after inactive_ms, 2 gets in.
    assert!(b.send(&mut f, LOUD, 900).is_empty());
    assert_eq!(to(&b.send(&mut f, LOUD, 1100)), vec![10]);
    // 1 is muted by a moderator while holding a slot: the slot is free at once.
    let mut g = room(4);
    g.add_peer(10, 1);
    for p in 1..=2 {
        g.add_peer(p, 0);
        g.set_audible(p, true);
    }
    let mut a = Talk::new(1, 0);
    let mut b = Talk::new(2, 0);
    assert_eq!(to(&a.send(&mut g, LOUD, 0)), vec![10]);
    g.set_audible(1, false);
    assert_eq!(to(&b.send(&mut g, QUIET, 20)), vec![10]);
}

#[test]
fn slot_timestamps_continue_across_speaker_switches() {
    let mut f = room(4);
    f.add_peer(10, 1);
    for p in 1..=2 {
        f.add_peer(p, 0);
        f.set_audible(p, true);
    }
    // Two speakers with unrelated RTP clocks.
    let mut a = Talk::new(1, 5_000_000);
    let mut b = Talk::new(2, 17);
    let mut times = Vec::new();
    let mut now = 0;
    for _ in 0..10 {
        times.push(a.send(&mut f, LOUD, now)[0].rtp_time);
        now += 20;
    }
    // Within one speaker's run, the output follows the input exactly.
    assert!(times.windows(2).all(|w| w[1] - w[0] == FRAME_TICKS));
    // 1 goes silent (muted); 2 takes the slot 100 ms after 1's last packet.
    f.set_audible(1, false);
    now += 80;
    let first_b = b.send(&mut f, MID, now)[0];
    let last_a = *times.last().unwrap();
    assert_eq!(first_b.slot, 0);
    assert_eq!(
        first_b.rtp_time,
        last_a + 100 * 48,
        "continues by the time that passed"
    );
    now += 20;
    let second_b = b.send(&mut f, MID, now)[0];
    assert_eq!(second_b.rtp_time, first_b.rtp_time + FRAME_TICKS);
    // 1 comes back after 2 stops (inactive): the slot continues forward again.
    f.set_audible(1, true);
    now += 2000;
    let back = a.send(&mut f, LOUD, now)[0];
    assert!(back.rtp_time > second_b.rtp_time);
    assert_eq!(back.rtp_time, second_b.rtp_time + 2000 * 48);
}

#[test]
fn switch_within_one_frame_still_advances() {
    let mut f = room(4);
    f.add_peer(10, 1);
    for p in 1..=2 {
        f.add_peer(p, 0);
        f.set_audible(p, true);
    }
    let mut a = Talk::new(1, 1000);
    let mut b = Talk::new(2, 0);
    let t = a.send(&mut f, LOUD, 0)[0].rtp_time;
    f.set_audible(1, false);
    let u = b.send(&mut f, LOUD, 0)[0].rtp_time;
    assert_eq!(u, t + FRAME_TICKS);
}

#[test]
fn levels_report_noticeable_changes_and_silence() {
    let mut f = room(4);
    f.add_peer(1, 0);
    f.add_peer(2, 4);
    f.set_audible(1, true);
    let mut a = Talk::new(1, 0);
    assert!(f.levels_due(0).is_empty());
    for i in 0..10 {
        a.send(&mut f, MID, i * 20);
    }
    let due = f.levels_due(200);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].0, 1);
    assert!((due[0].1 - 0.5).abs() < 0.02, "{due:?}");
    // Same level again: nothing to report.
    for i in 10..20 {
        a.send(&mut f, MID, i * 20);
    }
    assert!(f.levels_due(400).is_empty());
    // Muted: reported as 0 once.
    f.set_audible(1, false);
    assert_eq!(f.levels_due(450), vec![(1, 0.0)]);
    assert!(f.levels_due(700).is_empty());
    // Unmuted and talking loudly, then silent packets: the level falls back to 0.
    f.set_audible(1, true);
    for i in 40..50 {
        a.send(&mut f, LOUD, i * 20);
    }
    let loud = f.levels_due(1000);
    assert!(loud[0].1 > 0.8, "{loud:?}");
    for i in 50..120 {
        a.send(&mut f, SILENT, i * 20);
    }
    let quiet = f.levels_due(2400);
    assert_eq!(quiet, vec![(1, 0.0)]);
    // A speaker who disconnects is reported silent.
    for i in 120..130 {
        a.send(&mut f, LOUD, i * 20);
    }
    assert_eq!(f.levels_due(2600).len(), 1);
    f.remove_peer(1);
    assert_eq!(f.levels_due(2800), vec![(1, 0.0)]);
    assert!(f.levels_due(3000).is_empty());
}
