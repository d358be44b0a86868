//! A room's devices agree keys through real MLS messages (serialized, as the server relays
//! them) and exchange SFrame-encrypted frames.

use ruang_e2ee::{Device, E2eeError, MediaCrypto, Processed, RoomGroup};

struct Member {
    device: Device,
    group: Option<RoomGroup>,
    media: MediaCrypto,
}

impl Member {
    fn new(user: &str) -> Self {
        Member {
            device: Device::new(user).unwrap(),
            group: None,
            media: MediaCrypto::new(),
        }
    }

    fn group(&mut self) -> &mut RoomGroup {
        self.group.as_mut().unwrap()
    }

    fn commit(&mut self, adds: &[(String, Vec<u8>)], removes: &[String]) -> ruang_e2ee::Handshake {
        self.group
            .as_mut()
            .unwrap()
            .commit(&self.device, adds, removes)
            .unwrap()
    }

    fn confirm(&mut self) -> u64 {
        self.group.as_mut().unwrap().confirm(&self.device).unwrap()
    }

    fn discard(&mut self) {
        self.group.as_mut().unwrap().discard(&self.device).unwrap()
    }

    fn process(&mut self, commit: &[u8]) -> Processed {
        self.group
            .as_mut()
            .unwrap()
            .process(&self.device, commit)
            .unwrap()
    }

    fn install(&mut self) {
        let group = self.group.as_ref().unwrap();
        self.media.install(group, &self.device).unwrap();
    }

    fn send(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.media.encrypt(frame, &mut out).unwrap();
        out
    }

    fn hear(&mut self, ciphertext: &[u8]) -> Result<(u32, Vec<u8>), E2eeError> {
        let mut out = Vec::new();
        let sender = self.media.decrypt(ciphertext, &mut out)?;
        Ok((sender, out))
    }
}

/// The host creates the room and adds the others in one commit; everyone installs keys.
fn room(users: &[&str]) -> Vec<Member> {
    let mut members: Vec<Member> = users.iter().map(|u| Member::new(u)).collect();
    members[0].group = Some(RoomGroup::create(&members[0].device, "r7kq2m5xv3na").unwrap());
    let adds: Vec<(String, Vec<u8>)> = members[1..]
        .iter()
        .map(|m| (m.device.user().to_string(), m.device.key_package().unwrap()))
        .collect();
    let (host, rest) = members.split_first_mut().unwrap();
    let hs = host.commit(&adds, &[]);
    assert_eq!(host.confirm(), hs.epoch);
    let welcome = hs.welcome.expect("adding members makes a welcome");
    for m in rest.iter_mut() {
        m.group = Some(RoomGroup::join(&m.device, &welcome).unwrap());
    }
    for m in members.iter_mut() {
        m.install();
    }
    members
}

const OPUS_FRAME: &[u8] = &[0x78, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];

#[test]
fn members_of_one_epoch_hear_each_other_and_share_a_safety_code() {
    let mut m = room(&["maya", "budi", "sari"]);
    let epoch = m[0].group().epoch();
    let code = m[0].group().safety_code();
    for x in m.iter_mut() {
        assert_eq!(x.group().epoch(), epoch);
        assert_eq!(x.group().safety_code(), code);
        assert_eq!(x.group().members().len(), 3);
    }
    assert_eq!(code.len(), 14, "three groups of four digits: {code}");

    let budi_index = m[1].group().own_index();
    let ct = m[1].send(OPUS_FRAME);
    assert_ne!(&ct[ct.len() - OPUS_FRAME.len()..], OPUS_FRAME);
    assert!(
        !ct.windows(OPUS_FRAME.len()).any(|w| w == OPUS_FRAME),
        "no plaintext in the ciphertext"
    );
    for i in [0, 2] {
        let (sender, frame) = m[i].hear(&ct).unwrap();
        assert_eq!(sender, budi_index);
        assert_eq!(frame, OPUS_FRAME);
    }
}

#[test]
fn a_removed_member_with_the_old_keys_cannot_decrypt_what_follows() {
    let mut m = room(&["maya", "budi", "sari"]);
    let before = m[1].send(OPUS_FRAME);
    assert!(m[2].hear(&before).is_ok());

    let (host, rest) = m.split_first_mut().unwrap();
    let hs = host.commit(&[], &["sari".to_string()]);
    host.confirm();
    host.install();
    // Budi gets the commit relayed; Sari too (a modified client keeps everything it gets).
    assert_eq!(rest[0].process(&hs.commit), Processed::Epoch(hs.epoch));
    rest[0].install();
    assert_eq!(rest[1].process(&hs.commit), Processed::Removed);
    assert!(rest[1].group().members().len() <= 3);

    let after = m[1].send(OPUS_FRAME);
    assert_eq!(m[0].hear(&after).unwrap().1, OPUS_FRAME);
    assert!(
        m[2].hear(&after).is_err(),
        "the removed member's old keys do not open the new epoch"
    );
    // Nor can it derive the new epoch's key from its group any more.
    let sari = &mut m[2];
    let group = sari.group.as_ref().unwrap();
    assert!(sari.media.install(group, &sari.device).is_err());
}

#[test]
fn frames_of_the_previous_epoch_still_play_across_a_commit_but_not_two_later() {
    let mut m = room(&["maya", "budi"]);
    let old = m[1].send(OPUS_FRAME);
    let old2 = m[1].send(b"second frame");
    for round in 0..2 {
        let (host, rest) = m.split_first_mut().unwrap();
        let hs = host.commit(&[], &[]);
        host.confirm();
        host.install();
        rest[0].process(&hs.commit);
        rest[0].install();
        if round == 0 {
            assert_eq!(
                m[0].hear(&old).unwrap().1,
                OPUS_FRAME,
                "in flight across one commit"
            );
        }
    }
    assert!(m[0].hear(&old2).is_err(), "two epochs old");
}

#[test]
fn replays_and_every_flipped_bit_are_refused() {
    let mut m = room(&["maya", "budi"]);
    let ct = m[1].send(OPUS_FRAME);
    assert!(m[0].hear(&ct).is_ok());
    assert!(
        matches!(m[0].hear(&ct), Err(E2eeError::Replayed)),
        "a replay is dropped"
    );

    let ct = m[1].send(OPUS_FRAME);
    for byte in 0..ct.len() {
        for bit in 0..8 {
            let mut bad = ct.clone();
            bad[byte] ^= 1 << bit;
            assert!(m[0].hear(&bad).is_err(), "flip of bit {bit} of byte {byte}");
        }
    }
    // The genuine frame still plays after all the forgeries.
    assert_eq!(m[0].hear(&ct).unwrap().1, OPUS_FRAME);
}

#[test]
fn random_and_truncated_frames_never_panic() {
    let mut m = room(&["maya", "budi"]);
    let ct = m[1].send(OPUS_FRAME);
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for len in 0..ct.len() {
        assert!(m[0].hear(&ct[..len]).is_err());
    }
    for _ in 0..5_000 {
        let len = (next() % 64) as usize;
        let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if len > 0 && next() % 2 == 0 {
            // keep a plausible header byte so the key-id path is exercised too
            frame[0] = ct[0];
        }
        assert!(m[0].hear(&frame).is_err());
    }
    assert_eq!(m[0].hear(&ct).unwrap().1, OPUS_FRAME);
}

#[test]
fn a_key_package_offered_under_another_name_is_refused() {
    let host = Device::new("maya").unwrap();
    let mallory = Device::new("mallory").unwrap();
    let mut group = RoomGroup::create(&host, "room").unwrap();
    let err = group
        .commit(
            &host,
            &[("budi".into(), mallory.key_package().unwrap())],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, E2eeError::WrongIdentity { .. }), "{err:?}");
    assert!(matches!(
        group.commit(&host, &[("budi".into(), b"garbage".to_vec())], &[]),
        Err(E2eeError::Malformed { .. })
    ));
    assert!(RoomGroup::join(&mallory, b"not a welcome").is_err());
    assert_eq!(group.epoch(), 0, "nothing was staged");
}

#[test]
fn when_two_members_commit_on_one_epoch_the_loser_discards_and_follows_the_winner() {
    let mut m = room(&["maya", "budi", "sari"]);
    let (a, rest) = m.split_first_mut().unwrap();
    let win = a.commit(&[], &[]);
    let _lose = rest[0].commit(&[], &[]);
    // The server took Maya's: she confirms, Budi discards his and processes hers.
    a.confirm();
    rest[0].discard();
    rest[0].process(&win.commit);
    rest[1].process(&win.commit);
    let codes: Vec<String> = m.iter_mut().map(|x| x.group().safety_code()).collect();
    assert!(codes.iter().all(|c| *c == codes[0]));
    for x in m.iter_mut() {
        x.install();
    }
    let ct = m[2].send(OPUS_FRAME);
    assert_eq!(m[1].hear(&ct).unwrap().1, OPUS_FRAME);
}

#[test]
fn an_identity_survives_a_restart_and_keeps_its_fingerprint() {
    let d = Device::new("maya").unwrap();
    let secret = d.identity_secret().unwrap();
    let back = Device::restore("maya", &secret).unwrap();
    assert_eq!(d.fingerprint(), back.fingerprint());
    assert!(Device::restore("maya", b"{}").is_err());
    // The restored device can be added to a room with a fresh key package.
    let host = Device::new("budi").unwrap();
    let mut g = RoomGroup::create(&host, "room").unwrap();
    let hs = g
        .commit(&host, &[("maya".into(), back.key_package().unwrap())], &[])
        .unwrap();
    g.confirm(&host).unwrap();
    let joined = RoomGroup::join(&back, &hs.welcome.unwrap()).unwrap();
    assert_eq!(joined.safety_code(), g.safety_code());
    let fps: Vec<String> = joined
        .members()
        .into_iter()
        .map(|m| m.fingerprint)
        .collect();
    assert!(fps.contains(&d.fingerprint()));
}
