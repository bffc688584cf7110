//! The machine a data directory belongs to: a fingerprint that the server id is bound to.
//!
//! Licenses are bound to a server id, and the id lives in the data directory, so without this a
//! copy of the data directory on a second machine would be a second fully licensed server. The
//! fingerprint is a SHA-256 over what identifies the machine and does not travel with a copied
//! directory:
//!
//! - the machine id: `/etc/machine-id` (systemd), else `/var/lib/dbus/machine-id`;
//! - the id of the root file system (`statvfs("/").f_fsid`, derived from the file system's UUID
//!   on ext4 and XFS).
//!
//! Neither is secret, and root on the machine can fake both; the point is that copying a
//! directory is not enough. In a container both are the container's: give it a stable identity
//! by bind-mounting the host's `/etc/machine-id` (read-only) and keeping the data directory on a
//! volume, so a re-created container is the same machine.
//!
//! Development builds can pretend to be another machine (`LICENSE_SERVER_DEV_SIMULATE_HOST`), so
//! tests can copy a data directory "to another host" on one machine. A sealed build refuses it.

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::sealed;
use crate::sys::hex;

/// In a development build, a name that replaces the machine's own inputs.
pub const SIMULATE_ENV: &str = "LICENSE_SERVER_DEV_SIMULATE_HOST";

const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// What identifies this machine, and what it was computed from (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// 64 lowercase hex digits.
    pub fingerprint: String,
    /// The inputs by name, e.g. `machine-id, root file system id`.
    pub inputs: String,
}

#[derive(Debug, Error)]
pub enum HostError {
    #[error(
        "{SIMULATE_ENV} is set, but this is a sealed build: only development builds can pretend \
         to run on another machine"
    )]
    SimulationInSealedBuild,
}

/// This machine's fingerprint (or the simulated one, in a development build).
pub fn detect() -> Result<Host, HostError> {
    if let Ok(name) = std::env::var(SIMULATE_ENV) {
        if sealed::is_sealed() {
            return Err(HostError::SimulationInSealedBuild);
        }
        return Ok(of(&[("simulated host", name)]));
    }
    let mut inputs = Vec::new();
    if let Some(id) = MACHINE_ID_FILES
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok())
        .map(|text| text.trim().to_owned())
        .filter(|id| !id.is_empty())
    {
        inputs.push(("machine-id", id));
    }
    if let Some(fsid) = root_fsid() {
        inputs.push(("root file system id", format!("{fsid:016x}")));
    }
    Ok(of(&inputs))
}

/// The fingerprint of named inputs. No input at all is a fingerprint too (of nothing): such a
/// machine cannot tell a copy from the original, which [`Host::inputs`] says.
pub fn of(inputs: &[(&str, String)]) -> Host {
    let mut hash = Sha256::new();
    hash.update(b"license-server host v1\0");
    for (name, value) in inputs {
        hash.update(name.as_bytes());
        hash.update(b"=");
        hash.update(value.as_bytes());
        hash.update(b"\0");
    }
    let names: Vec<&str> = inputs.iter().map(|(name, _)| *name).collect();
    Host {
        fingerprint: hex::lower(&hash.finalize()),
        inputs: if names.is_empty() {
            "nothing (no machine id, no root file system id)".to_owned()
        } else {
            names.join(", ")
        },
    }
}

#[cfg(unix)]
fn root_fsid() -> Option<u64> {
    rustix::fs::statvfs("/").ok().map(|s| s.f_fsid)
}

#[cfg(not(unix))]
fn root_fsid() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_depends_on_every_input_and_its_name() {
        let a = of(&[
            ("machine-id", "abc".into()),
            ("root file system id", "1".into()),
        ]);
        assert_eq!(a.fingerprint.len(), 64);
        assert_eq!(a.inputs, "machine-id, root file system id");
        for other in [
            of(&[
                ("machine-id", "abd".into()),
                ("root file system id", "1".into()),
            ]),
            of(&[
                ("machine-id", "abc".into()),
                ("root file system id", "2".into()),
            ]),
            of(&[("machine-id", "abc".into())]),
            of(&[
                ("simulated host", "abc".into()),
                ("root file system id", "1".into()),
            ]),
        ] {
            assert_ne!(a.fingerprint, other.fingerprint, "{other:?}");
        }
        assert_eq!(
            a,
            of(&[
                ("machine-id", "abc".into()),
                ("root file system id", "1".into())
            ])
        );
    }

    #[test]
    fn this_machine_has_a_stable_fingerprint() {
        // Unless a test run simulates a host for the whole process, which none does.
        assert_eq!(detect().unwrap(), detect().unwrap());
    }
}
