//! Session tokens: the secret a client gets when it opens a session and shows on every later call
//! of that session, so that no other host can heartbeat, release or close someone else's job (the
//! session ids are sequential and public on the status page).
//!
//! A token is 256 bits from the OS CSPRNG, as 64 hex digits. Only its SHA-256 is kept: in the
//! ledger's `session_opened` entry (so a session keeps its token across a restart) and in memory.
//! A presented token is hashed and compared in constant time. Tokens never appear in `data.json`,
//! in the log, or in error messages.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::EngineError;
use crate::sys::hex;

/// The longest token a request may present; anything longer is wrong without hashing it.
const MAX_TOKEN: usize = 128;

/// A new session's token, and the hash the engine keeps of it.
pub(super) fn new_token() -> Result<(String, [u8; 32]), EngineError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| EngineError::NoRandomness)?;
    let token = hex::lower(&bytes);
    let hash = digest(&token);
    Ok((token, hash))
}

pub(super) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `presented` may act on a session whose token hash is `stored`. `None` stored: a
/// session opened before session tokens existed (an older server's ledger), which takes none.
pub(super) fn check(stored: Option<&[u8; 32]>, presented: Option<&str>) -> Result<(), EngineError> {
    let Some(stored) = stored else {
        return Ok(());
    };
    let presented = presented.ok_or(EngineError::SessionTokenMissing)?;
    if presented.len() > MAX_TOKEN {
        return Err(EngineError::SessionTokenWrong);
    }
    if bool::from(digest(presented).ct_eq(stored)) {
        Ok(())
    } else {
        Err(EngineError::SessionTokenWrong)
    }
}

/// The hash as the ledger stores it, and back.
pub(super) fn to_hex(hash: &[u8; 32]) -> String {
    hex::lower(hash)
}

pub(super) fn from_hex(text: &str) -> Option<[u8; 32]> {
    hex::decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sessions_own_token_passes() {
        let (token, hash) = new_token().unwrap();
        let (other, _) = new_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, other, "from a CSPRNG");
        assert_eq!(check(Some(&hash), Some(&token)), Ok(()));
        assert_eq!(
            check(Some(&hash), Some(&other)),
            Err(EngineError::SessionTokenWrong)
        );
        assert_eq!(
            check(Some(&hash), None),
            Err(EngineError::SessionTokenMissing)
        );
        assert_eq!(
            check(Some(&hash), Some(&"f".repeat(10_000))),
            Err(EngineError::SessionTokenWrong)
        );
        assert_eq!(check(None, None), Ok(()), "a session from before tokens");
        assert_eq!(from_hex(&to_hex(&hash)), Some(hash));
        assert_eq!(from_hex("zz"), None);
    }
}
