//! Cartridges as the status page shows them: per `(product_id, major_version)`, the sum of what
//! every counting license of the selected pool grants, with one location per contributing
//! license.

use std::collections::{BTreeMap, HashMap};

use models::{Cartridge, CartridgeStatistic, FailedByReason, LicenseCounts, Location};
use time::OffsetDateTime;

use super::dir::Scan;

/// The cartridges of `pool` (`None` = the default pool) at `now`, ordered by product and major
/// version. `pools`: serial number → pool, for the cartridges not in the default pool. Statistics
/// are zero until licenses are granted.
pub fn of_pool(
    scan: &Scan,
    pools: &HashMap<u64, String>,
    pool: Option<&str>,
    now: OffsetDateTime,
) -> Vec<Cartridge> {
    let mut cartridges: BTreeMap<(u32, u32), Cartridge> = BTreeMap::new();
    // Oldest install first, so the product name of the newest license wins (a vendor may rename
    // a product between releases).
    let licenses = scan
        .counting(now)
        .filter(|l| pools.get(&l.serial_number()).map(String::as_str) == pool);
    for installed in licenses {
        let license = &installed.verified.license;
        for rule in &license.rules.products {
            let credits = i64::try_from(rule.credits).unwrap_or(i64::MAX);
            let cartridge = cartridges
                .entry((rule.product_id, rule.major_version))
                .or_insert_with(|| Cartridge {
                    product_id: rule.product_id,
                    major_version: rule.major_version,
                    product: String::new(),
                    runcount: 0,
                    credits: 0,
                    postpay: false,
                    statistic: CartridgeStatistic {
                        licenses: LicenseCounts {
                            runcount: 0,
                            credits: 0,
                            failed: 0,
                            failed_by_reason: FailedByReason::default(),
                        },
                        used_credits: 0,
                        remaining_credits: 0,
                        runcount_in_use: 0,
                        sessions_dropped: 0,
                    },
                    locations: Vec::new(),
                });
            cartridge.product.clone_from(&rule.product);
            cartridge.runcount = cartridge.runcount.saturating_add(rule.runcount);
            cartridge.credits = cartridge.credits.saturating_add(credits);
            cartridge.postpay |= rule.postpay;
            cartridge.locations.push(Location {
                server_id: license.server_id.clone(),
                serial_number: license.rules.serial_number,
                runcount: rule.runcount,
                credits,
                postpay: rule.postpay,
                expires: license.rules.expires,
            });
        }
    }
    cartridges
        .into_values()
        .map(|mut cartridge| {
            let used = cartridge.statistic.used_credits;
            cartridge.statistic.remaining_credits = cartridge.credits.saturating_sub(used);
            cartridge
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use models::{License, ProductRule, Rules};
    use time::Duration;

    use super::*;
    use crate::licensing::{dir::Installed, file::Verified};

    fn rule(product_id: u32, major_version: u32, runcount: u32, credits: u64) -> ProductRule {
        ProductRule {
            product_id,
            major_version,
            product: format!("Product {product_id}"),
            runcount,
            credits,
            postpay: false,
        }
    }

    fn installed(
        serial_number: u64,
        expires: Option<OffsetDateTime>,
        products: Vec<ProductRule>,
    ) -> Installed {
        let now = OffsetDateTime::now_utc();
        Installed {
            verified: Verified {
                license: License {
                    key: format!("KEY-{serial_number}"),
                    server_id: "AB12".into(),
                    rules: Rules {
                        serial_number,
                        issued: now - Duration::days(1),
                        expires,
                        max_users: None,
                        products,
                    },
                },
                key_id: "K".into(),
                sha256: serial_number.to_string(),
            },
            file: format!("KEY-{serial_number}.lic").into(),
            installed: now,
            bound_until: None,
        }
    }

    /// What a snapshot of the inventory holds: the licenses, and the pools of some serials.
    struct Held(Scan, HashMap<u64, String>);

    fn snapshot(licenses: Vec<Installed>, pools: &[(u64, &str)]) -> Held {
        let pools = pools.iter().map(|(s, p)| (*s, (*p).to_owned())).collect();
        let scan = Scan {
            licenses,
            rejected: Vec::new(),
        };
        Held(scan, pools)
    }

    impl Held {
        fn of_pool(&self, pool: Option<&str>, now: OffsetDateTime) -> Vec<Cartridge> {
            of_pool(&self.0, &self.1, pool, now)
        }
    }

    #[test]
    fn licenses_for_the_same_product_and_version_add_up_with_one_location_each() {
        let mut postpay = rule(1000, 0, 0, 500);
        postpay.postpay = true;
        let s = snapshot(
            vec![
                installed(1, None, vec![rule(1000, 10, 8, 0), rule(1000, 0, 0, 100)]),
                installed(2, None, vec![rule(1000, 10, 2, 0), postpay]),
                installed(3, None, vec![rule(2000, 1, 1, 0)]),
            ],
            &[],
        );
        let all = s.of_pool(None, OffsetDateTime::now_utc());
        let keys: Vec<_> = all
            .iter()
            .map(|c| (c.product_id, c.major_version))
            .collect();
        assert_eq!(keys, [(1000, 0), (1000, 10), (2000, 1)]);
        let any = &all[0];
        assert_eq!(
            (any.credits, any.postpay),
            (600, true),
            "postpay if any location is"
        );
        assert_eq!(any.statistic.remaining_credits, 600);
        let v10 = &all[1];
        assert_eq!(v10.runcount, 10);
        let locations: Vec<_> = v10
            .locations
            .iter()
            .map(|l| (l.serial_number, l.runcount))
            .collect();
        assert_eq!(locations, [(1, 8), (2, 2)]);
    }

    #[test]
    fn a_pool_sees_only_its_cartridges_and_the_default_pool_only_unassigned_ones() {
        let s = snapshot(
            vec![
                installed(1, None, vec![rule(1000, 10, 8, 0)]),
                installed(2, None, vec![rule(1000, 10, 2, 0)]),
            ],
            &[(2, "farm")],
        );
        let now = OffsetDateTime::now_utc();
        assert_eq!(s.of_pool(None, now)[0].runcount, 8);
        assert_eq!(s.of_pool(Some("farm"), now)[0].runcount, 2);
        assert!(s.of_pool(Some("other"), now).is_empty());
    }

    #[test]
    fn an_expired_license_stops_counting_at_its_expiry() {
        let now = OffsetDateTime::now_utc();
        let expires = now + Duration::hours(1);
        let s = snapshot(
            vec![
                installed(1, Some(expires), vec![rule(1000, 10, 8, 0)]),
                installed(2, None, vec![rule(1000, 10, 2, 0)]),
            ],
            &[],
        );
        assert_eq!(s.of_pool(None, now)[0].runcount, 10);
        assert_eq!(s.of_pool(None, expires)[0].runcount, 2);
        assert_eq!(s.of_pool(None, expires)[0].locations.len(), 1);
    }
}
