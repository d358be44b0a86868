//! Sign-up with invites, invite sharing and revocation, sessions, profiles, follows.

use ruang_proto::{ErrorCode, ProfileUpdate};
use ruang_tests::{each_backend, Backend, TestServer};

async fn signup_and_invites(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let me = admin.me().await.unwrap();
    assert!(me.is_admin);
    assert!(me.invited_by.is_none());

    // The admin code is single use.
    let err = srv
        .anon()
        .signup(&srv.first_invite, "second", "S")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInvite));

    let codes = admin.invites().await.unwrap();
    assert_eq!(codes.len(), 5, "default invites per member");
    for c in &codes {
        assert_eq!(c.code.len(), 20);
        assert_eq!(c.link, format!("{}/i/{}", srv.url, c.code));
    }

    // Sign up from the pasted link, upper-cased with dashes: still the same code.
    let pasted = format!("{}/i/{}", srv.url, codes[0].code.to_uppercase());
    let mut ann = srv.anon();
    let s = ann.signup(&pasted, "ann", "Ann").await.unwrap();
    assert_eq!(s.user.invited_by.as_ref().unwrap().handle, "root");
    assert_eq!(admin.invites().await.unwrap().len(), 4);
    assert_eq!(ann.invites().await.unwrap().len(), 5);
    let profile = admin.profile("ann").await.unwrap();
    assert_eq!(profile.invited_by.unwrap().handle, "root", "nominated by");

    // Used code: refused, nothing written.
    let err = srv
        .anon()
        .signup(&codes[0].code, "bob", "Bob")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInvite));
    assert_eq!(
        admin.profile("bob").await.unwrap_err().code(),
        Some(ErrorCode::NotFound)
    );

    // Taken handle: refused, and the invite stays usable.
    let err = srv
        .anon()
        .signup(&codes[1].code, "ann", "Other Ann")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::HandleTaken));
    assert_eq!(admin.invites().await.unwrap().len(), 4);

    // Bad handles and names.
    for bad in ["AB", "has space", "x", "waaaaaaaaaaaaaaaaaaaaaaay_too_long"] {
        let err = srv
            .anon()
            .signup(&codes[1].code, bad, "N")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidHandle), "{bad}");
    }
    let err = srv
        .anon()
        .signup(&codes[1].code, "okname", "   ")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidField));

    // Revoke: the owner only, then the code is dead.
    assert_eq!(
        ann.revoke_invite(&codes[1].code).await.unwrap_err().code(),
        Some(ErrorCode::NotFound)
    );
    admin.revoke_invite(&codes[1].code).await.unwrap();
    assert_eq!(admin.invites().await.unwrap().len(), 3);
    let err = srv
        .anon()
        .signup(&codes[1].code, "carl", "Carl")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInvite));

    // Checking a code shows who invites, without using it.
    let check = srv.anon().check_invite(&codes[2].code).await.unwrap();
    assert_eq!(check.invited_by.unwrap().handle, "root");
    assert_eq!(
        srv.anon()
            .check_invite("nosuchcode")
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::InvalidInvite)
    );

    // Only admins mint codes.
    assert_eq!(
        ann.create_invite().await.unwrap_err().code(),
        Some(ErrorCode::Forbidden)
    );
    admin.create_invite().await.unwrap();
    assert_eq!(admin.invites().await.unwrap().len(), 4);
}
each_backend!(signup_and_invites_work, signup_and_invites);

async fn sessions_profiles_follows(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;

    let p = ann
        .update_profile(&ProfileUpdate {
            name: Some("Ann Lee".into()),
            bio: Some("I host the morning room".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p.name, "Ann Lee");
    assert_eq!(
        admin.profile("ann").await.unwrap().bio,
        "I host the morning room"
    );

    let p = admin.follow("ann").await.unwrap();
    assert!(p.followed_by_you);
    assert_eq!(p.followers, 1);
    assert_eq!(admin.me().await.unwrap().following, 1);
    admin.follow("ann").await.unwrap();
    assert_eq!(
        admin.profile("ann").await.unwrap().followers,
        1,
        "idempotent"
    );
    let p = admin.unfollow("ann").await.unwrap();
    assert!(!p.followed_by_you);
    assert_eq!(p.followers, 0);
    assert_eq!(
        admin.follow("root").await.unwrap_err().code(),
        Some(ErrorCode::InvalidTarget)
    );
    assert_eq!(
        admin.follow("ghost").await.unwrap_err().code(),
        Some(ErrorCode::NotFound)
    );

    // Logout revokes this token only; logout-all revokes every device.
    let mut second = srv.anon();
    let code = ann.invites().await.unwrap().remove(0).code;
    second.signup(&code, "bea", "Bea").await.unwrap();
    second.logout().await.unwrap();
    assert_eq!(
        second.me().await.unwrap_err().code(),
        Some(ErrorCode::Unauthorized)
    );
    admin.logout_all().await.unwrap();
    assert_eq!(
        admin.me().await.unwrap_err().code(),
        Some(ErrorCode::Unauthorized)
    );
    ann.me().await.unwrap();
}
each_backend!(
    sessions_profiles_and_follows_work,
    sessions_profiles_follows
);
