//! End-to-end encrypted rooms through the real server (issue 17, the server's part): the
//! room option, and the MLS relay. Real MLS groups (`ruang-e2ee`, the clients' code) are
//! driven only by what the server relays: key packages reach the moderators, one commit is
//! taken per epoch, welcomes reach the members they add. The members then agree on the
//! epoch, the safety code and the media key (an SFrame frame from one decrypts at another),
//! and a removed member is left behind: the room and the relay refuse it, and a frame sent
//! after the removal does not decrypt with the key it kept.

use base64::Engine as _;
use ruang_client::ClientError;
use ruang_e2ee::{Device, MediaCrypto, Processed, RoomGroup};
use ruang_proto::{CreateRoomRequest, ErrorCode, MlsCommitRequest, MlsState, RoomKind};
use ruang_tests::{Backend, TestServer};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 from the server")
}

fn code_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Api { code, .. }) => code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn request(title: &str, kind: RoomKind, record: bool) -> CreateRoomRequest {
    CreateRoomRequest {
        title: title.into(),
        kind,
        record,
        clips: false,
        e2ee: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_agree_on_keys_through_the_relay_and_a_removed_member_is_left_behind() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let budi = ts.member(&maya, "budi").await;
    let citra = ts.member(&maya, "citra").await;

    // The option: closed rooms only, and never recorded by the server.
    let open = maya
        .create_room_with(&request("Open", RoomKind::Open, false))
        .await;
    assert_eq!(code_of(open), ErrorCode::InvalidField);
    let recorded = maya
        .create_room_with(&request("Taped", RoomKind::Closed, true))
        .await;
    assert_eq!(code_of(recorded), ErrorCode::Encrypted);
    let summary = maya
        .create_room_with(&request("Sealed", RoomKind::Closed, false))
        .await
        .expect("an encrypted closed room");
    assert!(summary.e2ee);
    let room = summary.id.as_str().to_owned();
    maya.grant_access(&room, "budi").await.unwrap();
    maya.grant_access(&room, "citra").await.unwrap();

    let m = ts.join(&maya, &room).await;
    let b = ts.join(&budi, &room).await;
    let c = ts.join(&citra, &room).await;
    let maya_id = m.me().clone();
    let budi_id = b.me().clone();
    let citra_id = c.me().clone();
    assert_eq!(
        m.state().room.room.unwrap().e2ee,
        Some(MlsState::default()),
        "everyone is told the room is encrypted, at epoch 0"
    );
    // The server never records it, and no one may clip it.
    assert_eq!(code_of(m.set_recording(true).await), ErrorCode::Encrypted);
    assert_eq!(code_of(maya.clip(&room).await), ErrorCode::Forbidden);

    // Devices: the host's creates the group; the others ask to be added.
    let maya_dev = Device::new(maya_id.as_str()).unwrap();
    let budi_dev = Device::new(budi_id.as_str()).unwrap();
    let citra_dev = Device::new(citra_id.as_str()).unwrap();
    let mut maya_group = RoomGroup::create(&maya_dev, &room).unwrap();
    b.send_key_package(b64(&budi_dev.key_package().unwrap()))
        .await
        .unwrap();
    c.send_key_package(b64(&citra_dev.key_package().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        code_of(b.send_key_package("not base64!".into()).await),
        ErrorCode::InvalidField
    );
    let st = m
        .wait_for(PATIENCE, |s| {
            s.room
                .room
                .as_ref()
                .and_then(|r| r.e2ee.as_ref())
                .is_some_and(|e| e.pending.len() == 2)
        })
        .await
        .expect("the moderator sees both key packages");
    assert!(
        b.state()
            .room
            .room
            .unwrap()
            .e2ee
            .unwrap()
            .pending
            .is_empty(),
        "only moderators see who waits"
    );
    let pending = st.room.room.unwrap().e2ee.unwrap().pending;
    let adds: Vec<(String, Vec<u8>)> = pending
        .iter()
        .map(|k| (k.user.as_str().to_owned(), unb64(&k.key_package)))
        .collect();

    // Only a moderator commits.
    let hs = maya_group.commit(&maya_dev, &adds, &[]).unwrap();
    let add_both = MlsCommitRequest {
        epoch: 0,
        commit: b64(&hs.commit),
        welcome: hs.welcome.as_deref().map(b64),
        added: vec![budi_id.clone(), citra_id.clone()],
        removed: vec![],
    };
    assert_eq!(
        code_of(budi.mls_commit(&room, &add_both).await),
        ErrorCode::Forbidden
    );
    assert_eq!(maya.mls_commit(&room, &add_both).await.unwrap(), 1);
    assert_eq!(maya_group.confirm(&maya_dev).unwrap(), 1);
    // The same epoch again: someone else's commit was taken first.
    assert_eq!(
        code_of(maya.mls_commit(&room, &add_both).await),
        ErrorCode::StaleEpoch
    );

    // The added devices are told, fetch their welcome and join.
    let mut groups = Vec::new();
    for (session, client, dev) in [(&b, &budi, &budi_dev), (&c, &citra, &citra_dev)] {
        session
            .wait_for(PATIENCE, |s| s.room.mls_welcome == Some(1))
            .await
            .expect("mls_welcome");
        let w = client.mls_welcome(&room).await.unwrap();
        assert_eq!(w.epoch, 1);
        groups.push(RoomGroup::join(dev, &unb64(&w.welcome)).unwrap());
    }
    let (mut budi_group, citra_group) = (groups.remove(0), groups.remove(0));
    for g in [&budi_group, &citra_group] {
        assert_eq!(g.epoch(), 1);
        assert_eq!(g.safety_code(), maya_group.safety_code());
    }
    let maya_key = maya_group.epoch_key(&maya_dev).unwrap();
    let mut maya_media = MediaCrypto::new();
    maya_media.install_key(&maya_key).unwrap();
    let mut budi_media = MediaCrypto::new();
    budi_media.install(&budi_group, &budi_dev).unwrap();
    let mut citra_media = MediaCrypto::new();
    citra_media.install(&citra_group, &citra_dev).unwrap();
    let opus = [0x78u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
    let (mut sealed, mut opened) = (Vec::new(), Vec::new());
    maya_media.encrypt(&opus, &mut sealed).unwrap();
    assert_ne!(&sealed[..], &opus[..]);
    budi_media.decrypt(&sealed, &mut opened).unwrap();
    assert_eq!(opened, opus, "budi hears maya");
    citra_media.decrypt(&sealed, &mut opened).unwrap();
    assert_eq!(opened, opus, "citra hears maya");

    // Citra is removed from the room, then from the group.
    m.remove(&citra_id).await.unwrap();
    let hs = maya_group
        .commit(&maya_dev, &[], &[citra_id.as_str().to_owned()])
        .unwrap();
    let epoch = maya
        .mls_commit(
            &room,
            &MlsCommitRequest {
                epoch: 1,
                commit: b64(&hs.commit),
                welcome: None,
                added: vec![],
                removed: vec![citra_id.clone()],
            },
        )
        .await
        .unwrap();
    assert_eq!(epoch, 2);
    maya_group.confirm(&maya_dev).unwrap();
    // Budi is told, fetches the commit and follows.
    b.wait_for(PATIENCE, |s| {
        s.room
            .room
            .as_ref()
            .and_then(|r| r.e2ee.as_ref())
            .is_some_and(|e| e.epoch == 2)
    })
    .await
    .expect("mls_commit reaches the members");
    let relayed = budi.mls_commit_at(&room, 2).await.unwrap();
    assert_eq!(
        (relayed.by.clone(), relayed.removed.clone()),
        (maya_id.clone(), vec![citra_id.clone()])
    );
    assert_eq!(
        budi_group
            .process(&budi_dev, &unb64(&relayed.commit))
            .unwrap(),
        Processed::Epoch(2)
    );
    assert_eq!(budi_group.safety_code(), maya_group.safety_code());
    budi_media.install(&budi_group, &budi_dev).unwrap();
    // The relay refuses the removed member.
    assert_eq!(
        code_of(citra.mls_commit_at(&room, 2).await),
        ErrorCode::NotInRoom
    );
    // After the removal: budi decrypts maya's frame, citra's old key does not.
    maya_media
        .install_key(&maya_group.epoch_key(&maya_dev).unwrap())
        .unwrap();
    maya_media.encrypt(&opus, &mut sealed).unwrap();
    budi_media.decrypt(&sealed, &mut opened).unwrap();
    assert_eq!(opened, opus);
    assert!(
        citra_media.decrypt(&sealed, &mut opened).is_err(),
        "the removed member's keys open nothing sent after its removal"
    );

    // What the server keeps on disk has none of it: the database files (and everything else
    // in its data directory) hold no key package and no commit, raw or base64.
    let mut stored = Vec::new();
    let mut dirs = vec![ts.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                stored.extend_from_slice(&bytes);
            }
        }
    }
    assert!(stored.len() > 10_000, "the database is there");
    let key_package = unb64(&pending[0].key_package);
    for needle in [
        &hs.commit[hs.commit.len() - 48..],
        &key_package[key_package.len() - 48..],
        &b64(&hs.commit).as_bytes()[..48],
        &pending[0].key_package.as_bytes()[..48],
    ] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "handshakes and key packages are never written"
        );
    }
}
