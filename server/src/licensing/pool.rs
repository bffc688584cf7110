//! Cartridge pools. A request names its pool (the `X-Pool-ID` header, a session's `pool`, `cartridge
//! assign`); without a name it sees the default pool: the cartridges that are assigned to no pool.
//! A named pool sees only its own cartridges.

/// Longest pool name, in characters (spaces around it included): pool names are labels, and a
/// header should not be a way to make the server carry megabytes around.
pub const MAX_LEN: usize = 64;

/// The pool a request is about. `None` = the default pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool(pub Option<String>);

impl Pool {
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Reads a header value; leading and trailing spaces are not part of the name. `Err` says
    /// what is wrong with it.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_owned())?;
        Ok(Self(check_name(text)?.map(str::to_owned)))
    }
}

/// A pool name as a header or `cartridge assign` gives it: trimmed; empty = the default pool.
pub fn check_name(text: &str) -> Result<Option<&str>, String> {
    if text.chars().count() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".to_owned());
    }
    let text = text.trim();
    Ok((!text.is_empty()).then_some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_the_default_pool_and_names_are_trimmed() {
        assert_eq!(Pool::parse(b"").unwrap(), Pool(None));
        assert_eq!(Pool::parse(b"   ").unwrap(), Pool(None));
        assert_eq!(
            Pool::parse(b" render farm ").unwrap().name(),
            Some("render farm")
        );
        assert_eq!(
            Pool::parse("Zürich".as_bytes()).unwrap().name(),
            Some("Zürich")
        );
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(Pool::parse(&[0xff, 0xfe]).is_err());
        assert!(Pool::parse("a".repeat(MAX_LEN + 1).as_bytes()).is_err());
        assert!(Pool::parse("a".repeat(MAX_LEN).as_bytes()).is_ok());
    }
}
