//! Who this server is: its id, and what the status page tells about the machine it runs on.

use std::{fmt, fs, net::IpAddr};

use thiserror::Error;
use time::OffsetDateTime;

use super::{
    host::{self, Host, HostError},
    sealed,
};
use crate::{
    ledger::Event,
    store::{IdentityRow, Store, StoreError},
    sys::{
        VERSION, hex,
        timestamp::{parse_rfc3339, rfc3339},
    },
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
    #[error(transparent)]
    Host(#[from] HostError),
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

    /// This server's id on this machine (see [`ServerId::bound`]).
    pub async fn of(store: &Store) -> Result<Self, ServerIdError> {
        Ok(Self::bound(store, &host::detect()?).await?.server_id)
    }

    /// This server's id, bound to `host`: read from the store, or generated and stored if this
    /// is the first start. A data directory that was bound to another machine gets a new id here,
    /// and remembers the old one: licenses bound to it count for [`MOVE_GRACE`] more, so an
    /// administrator who moved a server on purpose has time to transfer them.
    pub async fn bound(store: &Store, host: &Host) -> Result<Binding, ServerIdError> {
        let candidate = Self::generate()?;
        store.server_id_or_insert(candidate.as_str()).await?;
        let mut row = store.identity().await?;
        if row.host.is_none() && !store.bind_host(&host.fingerprint).await? {
            row = store.identity().await?;
        }
        if row.host.as_deref().is_none_or(|h| h == host.fingerprint) {
            return Binding::of(row);
        }
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let new_id = Self::generate()?;
        let event = Event::ServerMoved {
            previous_server_id: row.server_id.clone(),
            server_id: new_id.to_string(),
            host_inputs: host.inputs.clone(),
        };
        store
            .record_move(
                &row.server_id,
                new_id.as_str(),
                &host.fingerprint,
                &rfc3339(now),
                event.row(now),
            )
            .await?;
        Binding::of(store.identity().await?)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the failover network whose members have `server_ids`: what a license for the
/// network is bound to. Derived from the members' server ids (each bound to its machine), so a
/// copy of the network on other machines has another id, and so does a network with another
/// member; the order of the list does not matter. Uppercase hex, like a server id.
pub fn network_id<'a>(server_ids: impl IntoIterator<Item = &'a str>) -> ServerId {
    use sha2::{Digest, Sha256};
    let mut ids: Vec<&str> = server_ids.into_iter().collect();
    ids.sort_unstable();
    let mut hasher = Sha256::new();
    hasher.update(b"license-server network v1\n");
    for id in ids {
        hasher.update(id.as_bytes());
        hasher.update(b"\n");
    }
    ServerId(hex::upper(&hasher.finalize()))
}

/// How long licenses bound to a data directory's previous server id keep counting after it was
/// found on another machine.
pub const MOVE_GRACE: time::Duration = time::Duration::minutes(30);

/// In a development build, a shorter [`MOVE_GRACE`] in seconds (for tests).
pub const MOVE_GRACE_ENV: &str = "LICENSE_SERVER_DEV_MOVE_GRACE_S";

/// This server's id, and where it came from if its data directory moved to this machine; on a
/// member of a failover network, the network's id too (licenses for the network are bound to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub server_id: ServerId,
    pub moved: Option<Moved>,
    pub network: Option<ServerId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub previous: ServerId,
    pub at: OffsetDateTime,
    /// Licenses bound to `previous` count until then.
    pub until: OffsetDateTime,
}

impl Binding {
    /// Says in the log, while the grace after a move lasts, what happened and the way out.
    pub fn warn_if_moved(&self, now: OffsetDateTime) {
        if let Some(moved) = self.moved.as_ref().filter(|m| now < m.until) {
            tracing::warn!(
                previous_server_id = %moved.previous,
                server_id = %self.server_id,
                "this data directory was moved from another machine at {}: its server id was {} \
                 and is now {}. Licenses bound to the old id stop granting at {}. Transfer them: \
                 deactivate them for the old id at the vendor (the Vendor screen, or ask the \
                 vendor) and activate them for the new one; or move the data directory back",
                rfc3339(moved.at),
                moved.previous,
                self.server_id,
                rfc3339(moved.until)
            );
        }
    }

    /// A server that never moved.
    pub fn fixed(server_id: ServerId) -> Self {
        Self {
            server_id,
            moved: None,
            network: None,
        }
    }

    /// This binding on a member of the failover network `network` (its id).
    pub fn with_network(self, network: Option<ServerId>) -> Self {
        Self { network, ..self }
    }

    /// This binding once the failover network's members changed at `at`, and with them its id
    /// from `previous` to `network`: licenses bound to the previous id count for the grace, as
    /// after a move (the time to activate the license for the new id).
    pub fn network_changed(
        self,
        previous: ServerId,
        network: ServerId,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            network: Some(network),
            moved: Some(Moved {
                previous,
                at,
                until: at + move_grace(),
            }),
            ..self
        }
    }

    /// The id licenses must be bound to: on a member of a failover network the network's (a
    /// member's own license would count only while it coordinates), else this server's. (A
    /// member's `moved` is the network's previous id, after its members changed.)
    pub fn license_id(&self) -> &ServerId {
        self.network.as_ref().unwrap_or(&self.server_id)
    }

    fn of(row: IdentityRow) -> Result<Self, ServerIdError> {
        let moved = match (row.previous_server_id, row.moved_at) {
            (Some(previous), Some(at)) => {
                let at = parse_rfc3339(&at)
                    .map_err(|_| ServerIdError::Malformed(format!("moved at {at}")))?;
                Some(Moved {
                    previous: ServerId::parse(previous)?,
                    at,
                    until: at + move_grace(),
                })
            }
            _ => None,
        };
        Ok(Self {
            server_id: ServerId::parse(row.server_id)?,
            moved,
            network: None,
        })
    }

    /// The move, if `server_id` is the id this server had before it.
    pub fn moved_from(&self, server_id: &str) -> Option<&Moved> {
        self.moved
            .as_ref()
            .filter(|m| m.previous.as_str() == server_id)
    }
}

fn move_grace() -> time::Duration {
    if sealed::is_sealed() {
        return MOVE_GRACE;
    }
    std::env::var(MOVE_GRACE_ENV)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(MOVE_GRACE, time::Duration::seconds)
}

/// What a server says about itself on the status page. Fixed at start.
#[derive(Debug, Clone)]
pub struct Identity {
    pub server_id: ServerId,
    /// Where it came from, if its data directory moved to this machine.
    pub moved: Option<Moved>,
    pub serial_number: String,
    pub hostname: String,
    pub ip_address: IpAddr,
    pub license_port: u16,
    pub platform: String,
    pub started: OffsetDateTime,
}

impl Identity {
    /// A new random server on 127.0.0.1:1400 with `serial_number`, for tests of what it signs.
    #[cfg(test)]
    pub fn sample(serial_number: &str) -> Self {
        Self::detect(
            Binding::fixed(ServerId::generate().unwrap_or_else(|e| panic!("{e}"))),
            serial_number.into(),
            std::net::IpAddr::from([127, 0, 0, 1]),
            1400,
        )
    }

    /// Describes this machine. `bind` is the listening address: when it is a specific address,
    /// that is where clients reach the server; when it is the wildcard, the machine's primary
    /// address is the best guess.
    pub fn detect(
        binding: Binding,
        serial_number: String,
        bind: IpAddr,
        license_port: u16,
    ) -> Self {
        Self {
            server_id: binding.server_id,
            moved: binding.moved,
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
            moved: self.moved.as_ref().map(|m| models::ServerMoved {
                previous_server_id: m.previous.to_string(),
                moved_at: m.at,
                licenses_stop_at: m.until,
            }),
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
    fn a_network_id_is_its_members_server_ids_and_nothing_else() {
        let id = network_id(["AA", "BB", "CC"]);
        assert_eq!(id.as_str().len(), 64);
        assert!(ServerId::parse(id.to_string()).is_ok());
        // The order of the list does not matter; another member does, and so does a member less.
        assert_eq!(network_id(["CC", "AA", "BB"]), id);
        assert_ne!(network_id(["AA", "BB", "CD"]), id);
        assert_ne!(network_id(["AA", "BB"]), id);
    }

    #[tokio::test]
    async fn a_data_directory_on_another_machine_gets_a_new_id_and_remembers_the_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        let (a, b) = (
            host::of(&[("machine-id", "a".into())]),
            host::of(&[("machine-id", "b".into())]),
        );
        let first = ServerId::bound(&store, &a).await.unwrap();
        assert_eq!(first.moved, None);
        assert_eq!(
            ServerId::bound(&store, &a).await.unwrap(),
            first,
            "same machine"
        );

        let moved = ServerId::bound(&store, &b).await.unwrap();
        assert_ne!(moved.server_id, first.server_id);
        let m = moved.moved.clone().unwrap();
        assert_eq!(m.previous, first.server_id);
        assert_eq!(m.until - m.at, MOVE_GRACE);
        assert_eq!(moved.moved_from(first.server_id.as_str()), Some(&m));
        assert_eq!(moved.moved_from(moved.server_id.as_str()), None);
        assert_eq!(
            ServerId::bound(&store, &b).await.unwrap(),
            moved,
            "it stays"
        );
        let rows = store.ledger_rows(0, 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind, "server_moved");
        assert!(rows[0].body.contains(first.server_id.as_str()));

        // Back on the first machine: another move, from the second id.
        let back = ServerId::bound(&store, &a).await.unwrap();
        assert_ne!(back.server_id, first.server_id);
        assert_eq!(back.moved.unwrap().previous, moved.server_id);
    }

    #[tokio::test]
    async fn a_data_directory_from_before_host_binding_is_bound_where_it_first_starts() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store.db")).await.unwrap();
        let old = store.server_id_or_insert("ABCD").await.unwrap();
        assert_eq!(store.identity().await.unwrap().host, None);
        let here = host::of(&[("machine-id", "here".into())]);
        let bound = ServerId::bound(&store, &here).await.unwrap();
        assert_eq!(
            (bound.server_id.as_str(), bound.moved),
            (old.as_str(), None)
        );
        assert_eq!(
            store.identity().await.unwrap().host.as_deref(),
            Some(here.fingerprint.as_str())
        );
    }

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
        let identity = Identity::detect(
            Binding::fixed(id.clone()),
            "7".into(),
            [10, 1, 2, 3].into(),
            1400,
        );
        let record = identity.record();
        assert_eq!(record.ip_address, IpAddr::from([10, 1, 2, 3]));
        assert_eq!(record.coordinator.as_deref(), Some(id.as_str()));
        assert_eq!(record.started.nanosecond(), 0);
    }
}
