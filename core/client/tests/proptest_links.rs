//! Property tests of room-link parsing (links arrive from chat apps and the clipboard): any
//! text is parsed or refused without a panic, and the links the server makes parse back to
//! their room id and link token.

use proptest::prelude::*;
use ruang_client::api::parse_room_link;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_never_panics(text in any::<String>()) {
        let _ = parse_room_link(&text);
    }

    #[test]
    fn url_shaped_text_never_panics(
        text in "(https?|ruang|ftp)://[a-z./%?&=#:@\\[\\]0-9]{0,40}",
    ) {
        if let Some((id, _)) = parse_room_link(&text) {
            prop_assert!(!id.is_empty());
        }
    }

    #[test]
    fn server_links_parse_back(
        host in "[a-z]{1,10}(\\.[a-z]{2,3})?(:[1-9][0-9]{1,3})?",
        base in "(/[a-z]{1,6}){0,2}",
        id in "[a-z0-9]{12}",
        token in prop::option::of("[a-f0-9]{24}"),
        https in any::<bool>(),
        extra in "(&listen=1)?",
    ) {
        let scheme = if https { "https" } else { "http" };
        let query = match &token {
            Some(t) => format!("?t={t}{extra}"),
            None => String::new(),
        };
        let link = format!("{scheme}://{host}{base}/r/{id}{query}");
        prop_assert_eq!(parse_room_link(&link), Some((id.clone(), token.clone())));
        let app = format!("ruang://r/{id}{query}");
        prop_assert_eq!(parse_room_link(&app), Some((id, token)));
    }
}
