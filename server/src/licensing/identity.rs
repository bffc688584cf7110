//! Who this server is: its id, and what the status page tells about the machine it runs on.

use std::{fmt, fs, net::IpAddr};

use thiserror::Error;
use time::OffsetDateTime;

use crate::{
    store::{Store, StoreError},
    sys::{VERSION, hex},
};

/// Random bytes in a server id: 256 bits, so two servers never share an id by chance.
const SERVER_ID_BYTES: usize = 32;

/// The stable id of a server: uppercase hex, generated from the OS CSPRNG at first start and kept
/// in the store. Licenses are bound to it, so it must never change for the life of a data
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerId(String);

#[derive(Debug, Error)]
pub enum ServerIdError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("stored server id {0:?} is not uppercase hex; the store is damaged")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServerId {
    pub fn generate() -> Result<Self, ServerIdError> {
        let mut bytes = [0u8; SERVER_ID_BYTES];
        getrandom::fill(&mut bytes).map_err(ServerIdError::Random)?;
        Ok(Self(hex::upper(&bytes)))
    }

    /// Checks a stored id. Shorter or longer ids are accepted (servers of other versions may have
    /// made them); anything but uppercase hex is not.
    pub fn parse(s: String) -> Result<Self, ServerIdError> {
        let valid = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c));
        if valid {
            Ok(Self(s))
        } else {
            Err(ServerIdError::Malformed(s))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This server's id: read from the store, or generated and stored if this is the first start.
    pub async fn of(store: &Store) -> Result<Self, ServerIdError> {
        let candidate = Self::generate()?;
        Self::parse(store.server_id_or_insert(candidate.as_str()).await?)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a server says about itself on the status page. Fixed at start.
#[derive(Debug, Clone)]
pub struct Identity {
    pub server_id: ServerId,
    pub serial_number: String,
    pub hostname: String,
    pub ip_address: IpAddr,
    pub license_port: u16,
    pub platform: String,
    pub started: OffsetDateTime,
}

impl Identity {
    /// Describes this machine. `bind` is the listening address: when it is a specific address,
    /// that is where clients reach the server; when it is the wildcard, the machine's primary
    /// address is the best guess.
    pub fn detect(
        server_id: ServerId,
        serial_number: String,
        bind: IpAddr,
        license_port: u16,
    ) -> Self {
        Self {
            server_id,
            serial_number,
            hostname: hostname(),
            ip_address: if bind.is_unspecified() {
                primary_address(bind)
            } else {
                bind
            },
            license_port,
            platform: platform(),
            // Whole seconds: the status page shows seconds, and RFC 3339 with nanoseconds only
            // makes scripts' lives harder.
            started: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        }
    }

    /// The server record of `data.json`. A single server is its own coordinator.
    pub fn record(&self) -> models::Server {
        models::Server {
            server_id: self.server_id.to_string(),
            status: models::ServerStatus::Running,
            serial_number: self.serial_number.clone(),
            version: VERSION.to_owned(),
            hostname: self.hostname.clone(),
            ip_address: self.ip_address,
            port: self.license_port,
            platform: self.platform.clone(),
            started: self.started,
            coordinator: Some(self.server_id.to_string()),
            build: Some(super::sealed::build()),
        }
    }
}

pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The first address of an interface that is up and not loopback or link-local, of the same
/// family as the wildcard we listen on; loopback when there is none (an offline laptop). Reads
/// the interface table: no packet is sent to find out.
fn primary_address(wildcard: IpAddr) -> IpAddr {
    let usable = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
    };
    let addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifaces| ifaces.iter().map(|i| i.ip()).filter(usable).collect())
        .unwrap_or_default();
    // An IPv6 wildcard also accepts IPv4 on most systems; prefer IPv4, which people recognise.
    addresses
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addresses.iter().find(|_| wildcard.is_ipv6()))
        .copied()
        .unwrap_or(match wildcard {
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        })
}

/// OS name and version, kernel, architecture, kernel release:
/// `Debian GNU/Linux 12 (bookworm) Linux x86_64 6.1.0-18-amd64`.
pub fn platform() -> String {
    let arch = std::env::consts::ARCH;
    let read = |path: &str| fs::read_to_string(path).ok().map(|s| s.trim().to_owned());
    let os_release = read("/etc/os-release").or_else(|| read("/usr/lib/os-release"));
    let pretty_name = os_release.as_deref().and_then(os_release_pretty_name);
    let kernel = read("/proc/sys/kernel/ostype");
    let release = read("/proc/sys/kernel/osrelease");
    let parts = [
        pretty_name,
        Some(kernel.unwrap_or_else(|| std::env::consts::OS.to_owned())),
        Some(arch.to_owned()),
        release,
    ];
    parts
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn os_release_pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim().trim_matches('"').trim_matches('\'').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_long_uppercase_hex_and_differ() {
        let a = ServerId::generate().unwrap();
        let b = ServerId::generate().unwrap();
        assert_eq!(a.as_str().len(), 2 * SERVER_ID_BYTES);
        assert!(ServerId::parse(a.to_string()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn stored_ids_must_be_uppercase_hex() {
        assert!(
            ServerId::parse("FAB348C4CD3C14E974730F83A0BFE4705428A9683880C967C9F2134".into())
                .is_ok()
        );
        for bad in ["", "fab348", "XYZ", "AB CD"] {
            assert!(ServerId::parse(bad.into()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn pretty_name_is_read_from_os_release() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(
            os_release_pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os_release_pretty_name("ID=alpine"), None);
    }

    #[test]
    fn platform_names_the_architecture() {
        assert!(
            platform().contains(std::env::consts::ARCH),
            "{}",
            platform()
        );
    }

    #[test]
    fn a_specific_bind_address_is_the_reported_address() {
        let id = ServerId::generate().unwrap();
        let identity = Identity::detect(id.clone(), "7".into(), [10, 1, 2, 3].into(), 1400);
        let record = identity.record();
        assert_eq!(record.ip_address, IpAddr::from([10, 1, 2, 3]));
        assert_eq!(record.coordinator.as_deref(), Some(id.as_str()));
        assert_eq!(record.started.nanosecond(), 0);
    }
}
