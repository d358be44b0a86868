//! What user-written text (names, room titles, bios) may contain.
//!
//! Refused: control characters (a bio may have line breaks), U+0000 (PostgreSQL cannot store
//! it), bidirectional overrides and isolates (they make a name display as something else),
//! and text that is only invisible characters or spaces (a name nobody can see).

/// Bidi embedding/override/isolate controls and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that draw nothing.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{034F}'
                | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{180E}'
        )
}

/// Checks a piece of user text after trimming; returns it trimmed, or why it is refused.
/// `what` names the field in the message ("a name"), `max` is in characters.
pub fn clean_text(
    raw: &str,
    what: &str,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, String> {
    let text = raw.trim();
    let len = text.chars().count();
    if len < min || len > max {
        return Err(if min > 0 {
            format!("{what} has {min} to {max} characters")
        } else {
            format!("{what} has at most {max} characters")
        });
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        return Err(format!("{what} cannot contain control characters"));
    }
    if text.chars().any(is_bidi_control) {
        return Err(format!(
            "{what} cannot contain text-direction override characters"
        ));
    }
    if min > 0 && text.chars().all(is_invisible) {
        return Err(format!("{what} must have visible characters"));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Result<String, String> {
        clean_text(s, "a name", 1, 50, false)
    }

    #[test]
    fn ordinary_text_passes_trimmed() {
        assert_eq!(name("  Maya Sari ").unwrap(), "Maya Sari");
        assert_eq!(name("Ñoño 王 🎙️").unwrap(), "Ñoño 王 🎙️");
        assert_eq!(
            clean_text("line one\nline two", "a bio", 0, 500, true).unwrap(),
            "line one\nline two"
        );
        assert_eq!(clean_text("", "a bio", 0, 500, true).unwrap(), "");
    }

    #[test]
    fn refuses_nul_controls_escapes_bidi_and_invisible() {
        assert!(name("a\u{0}b").is_err());
        assert!(name("a\nb").is_err(), "no line breaks in names");
        assert!(clean_text("bio \u{1b}[31mred", "a bio", 0, 500, true).is_err());
        assert!(clean_text("x\u{7}", "a bio", 0, 500, true).is_err());
        assert!(name("\u{202E}evil").is_err());
        assert!(name("ok\u{2067}").is_err());
        assert!(name("\u{200B}").is_err());
        assert!(name("\u{200B}\u{2060} \u{FEFF}").is_err());
        assert!(name("").is_err());
        assert!(name(&"x".repeat(51)).is_err());
        // One visible character among invisible ones is a name.
        assert!(name("\u{200B}a").is_ok());
    }
}
