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
