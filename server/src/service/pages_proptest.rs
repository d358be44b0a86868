//! Property tests of the link pages' parsing of outside input (`/r/ID?t=TOKEN&listen=1`,
//! `/i/CODE`): any query string, id or code is looked up or ignored, never a panic, and what
//! is echoed into a page is escaped.

use super::{escape, plausible, query_value};
use proptest::prelude::*;
use ruang_proto::normalize_invite_code;

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_query_string_is_read_without_panic(
        query in prop_oneof![any::<String>(), "[a-z=&%0-9]{0,40}"],
        key in prop_oneof![Just("t".to_owned()), Just("listen".to_owned()), "[a-z]{0,3}"],
    ) {
        if let Some(v) = query_value(Some(&query), &key) {
            prop_assert!(!v.contains('&'));
            prop_assert!(query.contains(&v));
        }
        prop_assert_eq!(query_value(None, &key), None);
    }

    #[test]
    fn the_first_value_of_a_key_wins(
        pairs in prop::collection::vec(("[a-z]{1,6}", "[a-z0-9=]{0,10}"), 0..8),
        token in "[a-f0-9]{24}",
        junk in "[&=]{0,3}",
    ) {
        let mut parts: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "t")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let at = parts.len() / 2;
        parts.insert(at, format!("t={token}"));
        parts.push("t=second".into());
        let query = format!("{junk}&{}", parts.join("&"));
        prop_assert_eq!(query_value(Some(&query), "t"), Some(token.clone()));
        prop_assert!(plausible(&token, 64));
    }

    #[test]
    fn only_short_alphanumeric_ids_are_looked_up(s in any::<String>(), max in 0usize..80) {
        let ok = plausible(&s, max);
        prop_assert_eq!(
            ok,
            !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn invite_codes_from_the_path_never_panic(code in any::<String>()) {
        let code = normalize_invite_code(&code);
        let _ = plausible(&code, 64);
    }

    #[test]
    fn escaped_text_has_no_markup_and_reads_back(s in any::<String>()) {
        let e = escape(&s);
        prop_assert!(!e.contains(['<', '>', '"', '\'']));
        prop_assert_eq!(unescape(&e), s);
    }
}
