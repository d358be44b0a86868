use super::*;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn first_invite_once_and_signup_is_all_or_nothing() {
    let (_dir, s) = store().await;
    let code = s.ensure_first_invite().await.unwrap().unwrap();
    assert!(s.ensure_first_invite().await.unwrap().is_none());
    let (token, admin) = s.signup(&code, "root", "Root", 3).await.unwrap();
    let me = s.user_for_token(&token).await.unwrap().unwrap();
    assert!(me.is_admin);
    assert_eq!(me.user.id, admin);
    let codes = s.unused_invites(&admin, "http://x").await.unwrap();
    assert_eq!(codes.len(), 3);

    // Reusing a code fails and writes nothing.
    assert!(matches!(
        s.signup(&code, "other", "O", 3).await,
        Err(StoreError::InvalidInvite)
    ));
    assert!(matches!(
        s.user_by_handle("other").await,
        Err(StoreError::NotFound)
    ));

    // A taken handle fails and leaves the invite unused.
    assert!(matches!(
        s.signup(&codes[0].code, "root", "Dup", 3).await,
        Err(StoreError::HandleTaken)
    ));
    assert_eq!(s.unused_invites(&admin, "http://x").await.unwrap().len(), 3);
    let (_, member) = s.signup(&codes[0].code, "ann", "Ann", 3).await.unwrap();
    let p = s.profile(&admin, &member).await.unwrap();
    assert_eq!(p.invited_by.unwrap().id, admin);
    assert!(!p.is_admin);
    assert_eq!(s.unused_invites(&admin, "http://x").await.unwrap().len(), 2);
}

#[tokio::test]
async fn concurrent_use_of_one_code_admits_one() {
    let (_dir, s) = store().await;
    let code = s.ensure_first_invite().await.unwrap().unwrap();
    let a = s.signup(&code, "aaa", "A", 1);
    let b = s.signup(&code, "bbb", "B", 1);
    let (a, b) = tokio::join!(a, b);
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1);
}

#[tokio::test]
async fn sessions_revoke() {
    let (_dir, s) = store().await;
    let code = s.ensure_first_invite().await.unwrap().unwrap();
    let (t1, id) = s.signup(&code, "root", "Root", 0).await.unwrap();
    let auth = s.user_for_token(&t1).await.unwrap().unwrap();
    s.revoke_session(&auth.token_hash).await.unwrap();
    assert!(s.user_for_token(&t1).await.unwrap().is_none());
    assert_eq!(s.revoke_all_sessions(&id).await.unwrap(), 0);
}

#[tokio::test]
async fn a_node_with_an_old_fencing_token_writes_nothing() {
    let (_dir, s) = store().await;
    let code = s.ensure_first_invite().await.unwrap().unwrap();
    let (_, admin) = s.signup(&code, "root", "Root", 1).await.unwrap();
    let room = StoredRoom {
        id: RoomId("r1".into()),
        title: "Fenced".into(),
        kind: RoomKind::Open,
        created_by: admin.clone(),
        link_token: "lt".into(),
        hands_enabled: true,
        created_at: now_ms(),
    };
    s.create_room(&room).await.unwrap();
    let first = s.next_room_fence(&room.id).await.unwrap().unwrap();
    let hand = Persist::Hands(vec![(admin.clone(), false)]);
    s.apply_room_change(&room.id, Some(first), &hand)
        .await
        .unwrap();
    // Another node takes the room over: the first one's writes are refused, and lost.
    let second = s.next_room_fence(&room.id).await.unwrap().unwrap();
    assert!(second > first);
    assert!(matches!(
        s.apply_room_change(&room.id, Some(first), &Persist::Hands(Vec::new()))
            .await,
        Err(StoreError::Fenced)
    ));
    assert!(matches!(
        s.apply_room_change(&room.id, Some(first), &Persist::Ended)
            .await,
        Err(StoreError::Fenced)
    ));
    let loaded = s
        .load_live_room(&room.id)
        .await
        .unwrap()
        .expect("still live");
    assert_eq!(loaded.hands, vec![(admin.clone(), false)]);
    // The new owner's writes land; an ended room takes no new token.
    s.apply_room_change(&room.id, Some(second), &Persist::Ended)
        .await
        .unwrap();
    assert!(s.load_live_room(&room.id).await.unwrap().is_none());
    assert_eq!(s.next_room_fence(&room.id).await.unwrap(), None);
}
