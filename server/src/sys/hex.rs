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

/// `N` bytes from exactly `2 * N` hex digits (either case); `None` for anything else.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    // Digit by digit: `u8::from_str_radix` would also take a sign ("+f").
    let nibble = |digit: u8| {
        char::from(digit)
            .to_digit(16)
            .and_then(|n| u8::try_from(n).ok())
    };
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(bytes)
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

    #[test]
    fn decoding_takes_exactly_the_digits_of_n_bytes() {
        assert_eq!(decode::<4>("000fA5ff"), Some([0x00, 0x0f, 0xa5, 0xff]));
        for bad in ["000fa5f", "000fa5fff", "000fa5fg", "+0fa5ff0", "é0fa5f"] {
            assert_eq!(decode::<4>(bad), None, "{bad}");
        }
    }
}
