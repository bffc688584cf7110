//! The license search: which cartridge of a pool answers a request, if any. Read-only: it looks at
//! the state's counters and the inventory's cartridges, and the caller decides under the lock.

use models::{Cartridge, LicenseType, RequestLicense, RequestType};
use time::OffsetDateTime;

use super::state::{CartridgeKey, State};
use crate::licensing::inventory::Snapshot;

/// What a search for a license found.
pub(super) enum Search {
    Found {
        key: CartridgeKey,
        product: String,
        license_type: LicenseType,
    },
    /// Cartridges exist for the request, all busy; refusals count against `first`. `seats`:
    /// some had seats for the request (all taken), rather than only used-up prepaid credits.
    Busy {
        first: CartridgeKey,
        seats: bool,
    },
    /// The product has cartridges, but none for this version.
    NoVersion,
    UnknownProduct,
}

/// Finds a license for `request` in `pool`: runcount before credits (for `all`); within a type
/// the requested major version, then newer ones ascending, then 0 (any version).
pub(super) fn search(
    state: &State,
    snapshot: &Snapshot,
    pool: Option<&str>,
    request: &RequestLicense,
    now: OffsetDateTime,
) -> Search {
    let all = snapshot.cartridges(pool, now);
    let cartridges: Vec<&Cartridge> = all
        .iter()
        .filter(|c| c.product_id == request.product_id)
        .collect();
    if cartridges.is_empty() {
        return Search::UnknownProduct;
    }
    let wanted = request.major_version;
    let mut candidates: Vec<&Cartridge> = cartridges
        .iter()
        .copied()
        .filter(|c| c.major_version == wanted || (wanted != 0 && c.major_version > wanted))
        .collect();
    candidates.sort_by_key(|c| c.major_version);
    if wanted != 0 {
        candidates.extend(cartridges.iter().copied().filter(|c| c.major_version == 0));
    }
    let Some(first) = candidates.first() else {
        return Search::NoVersion;
    };
    let types: &[LicenseType] = match request.request_type {
        RequestType::All => &[LicenseType::Runcount, LicenseType::Credits],
        RequestType::Runcount => &[LicenseType::Runcount],
        RequestType::Credits => &[LicenseType::Credits],
    };
    let key_of = |c: &Cartridge| (pool.map(str::to_owned), c.product_id, c.major_version);
    for license_type in types {
        for cartridge in &candidates {
            let stats = state.stats.get(&key_of(cartridge));
            let free = match license_type {
                LicenseType::Runcount => {
                    cartridge.runcount > stats.map_or(0, |s| s.runcount_in_use)
                }
                LicenseType::Credits => {
                    cartridge.postpay || cartridge.credits - stats.map_or(0, |s| s.used_credits) > 0
                }
            };
            if free {
                return Search::Found {
                    key: key_of(cartridge),
                    product: cartridge.product.clone(),
                    license_type: *license_type,
                };
            }
        }
    }
    let seats = types.contains(&LicenseType::Runcount) && candidates.iter().any(|c| c.runcount > 0);
    Search::Busy {
        first: key_of(first),
        seats,
    }
}
