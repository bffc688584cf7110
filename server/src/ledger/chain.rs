//! The chain that makes the ledger tamper evident: each row stores
//! `hash = SHA-256(prev_hash "\n" seq "\n" at "\n" body "\n")` in lowercase hex, the first row's
//! `prev_hash` being [`GENESIS_HASH`]. Editing a row breaks its own hash; deleting or reordering
//! rows breaks the link of the next. Hashes are over the stored text, never a re-serialisation.
//!
//! Only the definition lives here, without I/O: the store applies it ([`CHAIN`]) where it knows the
//! table's tail, and [`super::verify`] checks it.

use sha2::{Digest, Sha256};

use crate::{store::Chain, sys::hex};

/// The `prev_hash` of the first ledger row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The ledger's chain, as the store applies it to every row it appends.
pub const CHAIN: Chain = Chain {
    genesis: GENESIS_HASH,
    hash: chain_hash,
};

/// `SHA-256(prev_hash "\n" seq "\n" at "\n" body "\n")`, lowercase hex.
pub fn chain_hash(prev_hash: &str, seq: u64, at: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [prev_hash, &seq.to_string(), at, body] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hex::lower(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_hash_is_sha256_of_the_fields_in_lowercase_hex() {
        // sha256("a\n1\nb\nc\n")
        let expected = format!("{:x}", Sha256::digest(b"a\n1\nb\nc\n"));
        assert_eq!(chain_hash("a", 1, "b", "c"), expected);
        assert_eq!(expected.len(), 64);
        assert_eq!(GENESIS_HASH.len(), 64);
    }
}
