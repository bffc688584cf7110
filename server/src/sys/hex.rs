//! Bytes as hex text: hashes, ids and nonces. One implementation, without an allocation per
//! byte, because every ledger row is hashed on the hot path.

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Lowercase hex: hashes (the ledger chain, license files, tokens) and nonces.
pub fn lower(bytes: &[u8]) -> String {
    encode(bytes, LOWER)
}

/// Uppercase hex: the ids people read and compare (server ids, key ids).
pub fn upper(bytes: &[u8]) -> String {
    encode(bytes, UPPER)
}

fn encode(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(digits[usize::from(byte >> 4)]));
        hex.push(char::from(digits[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_cases_spell_every_nibble() {
        assert_eq!(lower(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(upper(&[0x00, 0x0f, 0xa5, 0xff]), "000FA5FF");
        assert_eq!(lower(&[]), "");
    }
}
