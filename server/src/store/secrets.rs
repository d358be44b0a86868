//! Random identifiers, invite codes and session tokens.

use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn base32_random(chars: usize) -> String {
    let mut rng = OsRng;
    (0..chars)
        .map(|_| BASE32[rng.gen_range(0..32)] as char)
        .collect()
}

/// 12 base32 characters (60 bits): ids are not secrets, only unique.
pub fn new_id() -> String {
    base32_random(12)
}

/// 20 base32 characters = 100 bits of randomness, above the 80 the product asks for.
pub fn new_invite_code() -> String {
    base32_random(20)
}

/// 256-bit session token, hex.
/// The key of a closed room's shared link: 96 random bits as 24 hex characters.
pub fn new_link_token() -> String {
    new_token()[..24].to_owned()
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Tokens are stored only as this hash.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let code = new_invite_code();
        assert_eq!(code.len(), 20);
        assert!(code.bytes().all(|b| BASE32.contains(&b)));
        assert_ne!(new_invite_code(), code);
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_eq!(hash_token(&t).len(), 64);
        assert_ne!(hash_token(&t), t);
    }
}
