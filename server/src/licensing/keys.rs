//! Ed25519 keys: the keypair a vendor signs license files with, the public keys a license server
//! trusts, and a server's own keypair (it signs the offline activation requests it creates).
//!
//! Keys are stored as standard PEM (PKCS#8 for the private key, SubjectPublicKeyInfo for the
//! public one), so `openssl pkey` can inspect them and a vendor can keep the private key in
//! whatever vault already holds its other keys. A key is named by its **key id**: the first 8
//! bytes of the SHA-256 of the raw public key, in hex. A license file carries the id of the key
//! that signed it, so a vendor can rotate keys and servers can trust old and new at once.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
};

use ed25519_dalek::{
    Signature, Signer, SigningKey, Verifier, VerifyingKey,
    pkcs8::{
        DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
        spki::der::pem::LineEnding,
    },
};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::sys::{
    atomic_file::{self, Mode},
    hex,
};

pub const PRIVATE_KEY_FILE: &str = "vendor.key";
pub const PUBLIC_KEY_FILE: &str = "vendor.pub";

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not an Ed25519 {what} in PEM format ({why})")]
    Format {
        path: PathBuf,
        what: &'static str,
        why: String,
    },
    #[error("{path} already exists; refusing to overwrite a key (move it away first)")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// Identifies a public key in a license file: 16 uppercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        Self(hex::upper(&digest[..8]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A private key: the vendor's, or a license server's own.
#[derive(Debug)]
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// A new key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(KeyError::Random)?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = read(path)?;
        let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Format {
            path: path.to_owned(),
            what: "private key",
            why: e.to_string(),
        })?;
        Ok(Self { signing })
    }

    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.signing.verifying_key())
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The key itself, for the rooms below `licensing` that sign with it (the ledger's head).
    pub fn signing_key(&self) -> SigningKey {
        self.signing.clone()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    /// The private key at `path` (PKCS#8 PEM, mode 0600), created if it does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate()?;
        match atomic_file::create_new(path, key.private_pem(path)?.as_bytes(), Mode::Private) {
            Ok(()) => Ok(key),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(source) => Err(KeyError::Write {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn private_pem(&self, path: &Path) -> Result<String, KeyError> {
        // PKCS#8 v1 (the seed only): OpenSSL 3.0 cannot read the v2 form that also embeds the
        // public key, and the public key follows from the seed anyway.
        let seed_only = KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        };
        seed_only
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::Write {
                path: path.to_owned(),
                source: io::Error::other(e.to_string()),
            })
    }

    /// Writes `DIR/vendor.key` (0600) and `DIR/vendor.pub`; refuses if either exists, and leaves
    /// neither behind if the second cannot be written.
    pub fn write_pair(&self, dir: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        let private_path = dir.join(PRIVATE_KEY_FILE);
        let public_path = dir.join(PUBLIC_KEY_FILE);
        for path in [&private_path, &public_path] {
            if path.exists() {
                return Err(KeyError::Exists { path: path.clone() });
            }
        }
        let private_pem = self.private_pem(&private_path)?;
        let public_pem = public_key_pem(&self.public_key());
        let write = |path: &Path, bytes: &[u8], mode| {
            atomic_file::create_new(path, bytes, mode).map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    KeyError::Exists {
                        path: path.to_owned(),
                    }
                } else {
                    KeyError::Write {
                        path: path.to_owned(),
                        source,
                    }
                }
            })
        };
        write(&private_path, private_pem.as_bytes(), Mode::Private)?;
        if let Err(e) = write(&public_path, public_pem.as_bytes(), Mode::Public) {
            let _ = fs::remove_file(&private_path);
            return Err(e);
        }
        Ok((private_path, public_path))
    }
}

fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .unwrap_or_else(|e| unreachable!("an Ed25519 public key always encodes: {e}"))
}

fn read(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The vendor public keys a license server accepts license files from.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(KeyId, VerifyingKey)>,
}

impl TrustedKeys {
    /// Loads every file; the first one that is missing or not a public key is an error that
    /// names it (a server that silently trusts fewer keys than configured would refuse licenses
    /// for no visible reason).
    pub fn load(paths: &[PathBuf]) -> Result<Self, KeyError> {
        let mut keys = Self::default();
        for path in paths {
            keys.add_pem(&read(path)?, path)?;
        }
        Ok(keys)
    }

    /// Trusts the public key in `pem`; `origin` names where it came from in an error.
    pub fn add_pem(&mut self, pem: &str, origin: &Path) -> Result<(), KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(|e| KeyError::Format {
            path: origin.to_owned(),
            what: "public key",
            why: if pem.contains("PRIVATE KEY") {
                "this is the private key; give the .pub file".to_owned()
            } else {
                e.to_string()
            },
        })?;
        self.add(key);
        Ok(())
    }

    pub fn add(&mut self, key: VerifyingKey) {
        let id = KeyId::of(&key);
        if !self.keys.iter().any(|(known, _)| *known == id) {
            self.keys.push((id, key));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|(id, _)| id)
    }

    /// Checks `signature` over `message` with the key named `key_id`. `None`: no such key is
    /// trusted; `Some(false)`: the key is trusted but did not make this signature.
    pub fn verify(&self, key_id: &str, message: &[u8], signature: &Signature) -> Option<bool> {
        let (_, key) = self.keys.iter().find(|(id, _)| id.as_str() == key_id)?;
        Some(key.verify(message, signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_pair_loads_back_and_verifies_its_own_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let (private_path, public_path) = key.write_pair(dir.path()).unwrap();

        let loaded = KeyPair::load(&private_path).unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
        let trusted = TrustedKeys::load(&[public_path]).unwrap();
        let signature = loaded.sign(b"message");
        let id = key.key_id();
        assert_eq!(
            trusted.verify(id.as_str(), b"message", &signature),
            Some(true)
        );
        assert_eq!(
            trusted.verify(id.as_str(), b"messagE", &signature),
            Some(false)
        );
        assert_eq!(
            trusted.verify("0000000000000000", b"message", &signature),
            None
        );
        assert_eq!(id.as_str().len(), 16);
    }

    #[test]
    fn the_private_key_is_pkcs8_v1_which_openssl_3_0_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (private_path, _) = KeyPair::generate().unwrap().write_pair(dir.path()).unwrap();
        let pem = fs::read_to_string(private_path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let decoded = KeypairBytes::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(
            decoded.public_key, None,
            "v2 (with the public key) is not readable by OpenSSL 3.0"
        );
    }

    #[test]
    fn keygen_refuses_to_overwrite_and_leaves_the_old_pair_alone() {
        let dir = tempfile::tempdir().unwrap();
        KeyPair::generate().unwrap().write_pair(dir.path()).unwrap();
        let before = fs::read(dir.path().join(PRIVATE_KEY_FILE)).unwrap();
        let err = KeyPair::generate()
            .unwrap()
            .write_pair(dir.path())
            .unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("refusing to overwrite"));
        assert_eq!(fs::read(dir.path().join(PRIVATE_KEY_FILE)).unwrap(), before);
    }

    #[test]
    fn the_private_key_given_as_public_key_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let (private_path, _) = KeyPair::generate().unwrap().write_pair(dir.path()).unwrap();
        let err = TrustedKeys::load(&[private_path]).unwrap_err();
        assert!(err.to_string().contains("give the .pub file"), "{err}");
        let err = TrustedKeys::load(&[dir.path().join("missing.pub")]).unwrap_err();
        assert!(err.to_string().contains("missing.pub"), "{err}");
    }
}
