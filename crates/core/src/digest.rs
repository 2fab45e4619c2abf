//! SHA-256 over several parts, each prefixed with its length (so `("ab", "c")` and `("a", "bc")`
//! never hash alike), and lower-case hex: the cache key, the ids the gateway derives, and the
//! signature memory's keys are all made this way.

use sha2::{Digest, Sha256};

/// SHA-256 of `parts`, each prefixed with its length as 8 big-endian bytes.
pub(crate) fn sha256_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_prefixed_and_hex_is_lower_case() {
        assert_ne!(sha256_of(&[b"ab", b"c"]), sha256_of(&[b"a", b"bc"]));
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
