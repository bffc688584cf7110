//! Which vendor keys this build trusts: a sealed build or a development build.
//!
//! A license server exists to enforce what the vendor sold, so the keys that decide what counts
//! as a license must not be the customer's to choose. A vendor builds the server with its public
//! key(s) compiled in (`make vendor-build VENDOR_KEYS=…`, read by `build.rs`; several keys for a
//! rotation). Such a **sealed** build trusts exactly those keys and refuses keys given at run time.
//! A build without compiled-in keys is a **development build**: it takes `--vendor-public-key` (for
//! tests and `make demo`), and says so wherever it cannot be missed: a WARN at start, `--version`,
//! the Servers row of `data.json` (`build`) and of the status page.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::keys::{KeyError, TrustedKeys};

include!(concat!(env!("OUT_DIR"), "/sealed.rs"));

#[derive(Debug, Error)]
pub enum TrustError {
    #[error(
        "this is a sealed build: it trusts only the vendor keys built into it ({sealed}), so \
         --vendor-public-key (and LICENSE_SERVER_VENDOR_PUBLIC_KEY) is refused; licenses must be \
         signed by one of these keys"
    )]
    RunTimeKeysRefused { sealed: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Whether vendor keys were compiled in.
pub fn is_sealed() -> bool {
    !SEALED_KEYS.is_empty()
}

/// What `data.json` says about this build.
pub fn build() -> models::Build {
    if is_sealed() {
        models::Build::Sealed
    } else {
        models::Build::Development
    }
}

/// The version and the kind of build, e.g. `0.1.0 (sealed build: trusts vendor keys 1D95…)`.
pub fn version_line() -> &'static str {
    VERSION_LINE
}

/// The key ids a sealed build trusts (none in a development build).
pub fn sealed_key_ids() -> &'static [&'static str] {
    SEALED_KEY_IDS
}

/// The keys license files are checked against: the compiled-in ones in a sealed build (where any
/// `run_time` key is an error), else the `run_time` ones.
pub fn trusted_keys(run_time: &[PathBuf]) -> Result<TrustedKeys, TrustError> {
    if !is_sealed() {
        return Ok(TrustedKeys::load(run_time)?);
    }
    if !run_time.is_empty() {
        return Err(TrustError::RunTimeKeysRefused {
            sealed: SEALED_KEY_IDS.join(", "),
        });
    }
    let mut keys = TrustedKeys::default();
    for pem in SEALED_KEYS {
        keys.add_pem(pem, Path::new("the keys compiled into this build"))?;
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test` builds without LICENSE_SERVER_VENDOR_KEYS: the sealed side is tested against
    /// a real sealed binary (`make sealed-test`).
    #[test]
    fn a_development_build_says_so_and_takes_run_time_keys() {
        assert!(!is_sealed());
        assert_eq!(build(), models::Build::Development);
        assert!(
            version_line().contains("development build"),
            "{}",
            version_line()
        );
        assert!(trusted_keys(&[]).unwrap().is_empty());
        let missing = trusted_keys(&[PathBuf::from("/nonexistent/vendor.pub")]);
        assert!(matches!(missing, Err(TrustError::Key(_))));
    }
}
