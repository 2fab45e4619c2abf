//! Gemini 3 thought signatures, issued and checked without remembering any.
//!
//! A signature is an opaque base64 text derived from a secret of this simulator process, the
//! call's id and the model, so the simulator can later tell a signature it issued (for that call
//! and model) from one it never issued, statelessly. It only has to be unguessable by accident:
//! the hash is FNV-1a widened with SplitMix64, not a cryptographic MAC.

use crate::ids::SplitMix64;

/// The documented value Gemini accepts in place of a signature for history it did not write.
pub const PLACEHOLDER: &str = "skip_thought_signature_validator";

/// A protobuf-like two-byte prefix, so signatures start like Google's (`Ej…`).
const PREFIX: [u8; 3] = [0x12, 0x30, 0x0a];

/// The signature of call `call_id` made by `model`.
pub fn issue(secret: u64, call_id: &str, model: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in secret
        .to_le_bytes()
        .iter()
        .chain([0u8].iter())
        .chain(call_id.as_bytes())
        .chain([0u8].iter())
        .chain(model.as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut words = SplitMix64::new(hash ^ secret.rotate_left(17));
    let mut bytes = PREFIX.to_vec();
    for _ in 0..6 {
        bytes.extend_from_slice(&words.next_u64().to_be_bytes());
    }
    base64(&bytes)
}

/// Whether `signature` is the placeholder or the one [`issue`] gives for this call and model.
pub fn verify(secret: u64, call_id: &str, model: &str, signature: &str) -> bool {
    signature == PLACEHOLDER || signature == issue(secret, call_id, model)
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn tells_issued_from_foreign() {
        let s = issue(7, "function-call-1", "gemini-3-flash");
        assert_eq!(s.len(), 68);
        assert!(s.starts_with("EjA"));
        assert!(verify(7, "function-call-1", "gemini-3-flash", &s));
        assert!(verify(7, "anything", "any", PLACEHOLDER));
        assert!(!verify(8, "function-call-1", "gemini-3-flash", &s), "another process");
        assert!(!verify(7, "function-call-2", "gemini-3-flash", &s), "another call");
        assert!(!verify(7, "function-call-1", "gemini-3-pro", &s), "another model");
        assert!(!verify(7, "function-call-1", "gemini-3-flash", "EjQKMgEMOdbH"));
    }
}
