//! What a member of a failover network does with the entries of other tables' changes that the
//! network's log committed: a license installed on any member is installed on every member, from
//! the file its entry carries; a removal removes it everywhere; a cartridge's pool is the same on
//! every member. Each is idempotent (the member that made the change has it already) and records
//! nothing: the entry is in the ledger already.

use time::OffsetDateTime;

use super::{
    identity::ServerId,
    install::{InstallError, Record, RemoveError},
    inventory::Inventory,
};
use crate::ledger::Event;

impl Inventory {
    /// Applies `event`'s change to this member's licenses and pools, if it is one, and refreshes
    /// the snapshot.
    /// (A member that installs a snapshot passes only the kinds of entries handled here:
    /// [`crate::ledger::event::INVENTORY_KINDS`] lists them, and must follow this.)
    pub async fn follow(&self, at: OffsetDateTime, event: &Event) -> anyhow::Result<()> {
        match event {
            Event::LicenseInstalled {
                key,
                file: Some(file),
                ..
            } => {
                let installed = self
                    .dir()
                    .install_as(
                        file.as_bytes().to_vec(),
                        self.trusted(),
                        &self.binding(),
                        self.store(),
                        at,
                        Record::Replicated,
                    )
                    .await;
                match installed {
                    Ok(_) => {}
                    Err(InstallError::License(e)) => tracing::warn!(
                        key,
                        error = %e,
                        "a license installed on another member of the failover network does not \
                         count here"
                    ),
                    Err(InstallError::Io(e)) => return Err(e),
                }
            }
            Event::LicenseRemoved { key, sha256, .. } => {
                let removed = self
                    .dir()
                    .remove_as(
                        key,
                        Some(sha256),
                        self.trusted(),
                        &self.binding(),
                        self.store(),
                        at,
                        Record::Replicated,
                    )
                    .await;
                match removed {
                    Ok(_) | Err(RemoveError::NotInstalled(_)) => {}
                    Err(RemoveError::Io(e)) => return Err(e),
                }
            }
            Event::NetworkChanged {
                previous_network_id,
                network_id,
                ..
            } => {
                let binding = self.binding();
                if binding.network.as_ref().map(ServerId::as_str) == Some(network_id.as_str())
                    && binding.moved_from(previous_network_id).is_some()
                {
                    return Ok(());
                }
                let changed = binding.network_changed(
                    ServerId::parse(previous_network_id.clone())?,
                    ServerId::parse(network_id.clone())?,
                    at,
                );
                tracing::warn!(
                    previous_network_id,
                    network_id,
                    "the failover network's members changed, and with them its id: licenses bound \
                     to the previous id count for a grace period; activate them for the new id"
                );
                return self.rebind(changed).await;
            }
            Event::CartridgeAssigned {
                serial_number,
                pool,
            } => {
                self.store()
                    .assign_pool(*serial_number, pool.as_deref(), None)
                    .await?;
            }
            _ => return Ok(()),
        }
        self.refresh().await
    }
}
