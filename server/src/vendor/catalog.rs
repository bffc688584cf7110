//! The vendor's catalog: the accounts of its customers and the licenses (entitlements) each owns,
//! read from a TOML file once at start and checked whole, so a typo stops the service instead of
//! surfacing as a refused activation at a customer's.

use std::{collections::HashSet, path::Path};

use anyhow::{Context, bail};
use models::{License, ProductRule, Rules};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{licensing::file as license_file, sys::timestamp::parse_rfc3339};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "account", default)]
    pub accounts: Vec<Account>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub principal: String,
    /// argon2id PHC string, from `license-vendor hash-secret`.
    pub secret_hash: String,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub fullname: Option<String>,
    #[serde(rename = "entitlement", default)]
    pub entitlements: Vec<Entitlement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    pub key: String,
    pub serial_number: u64,
    pub max_users: Option<u32>,
    /// RFC 3339.
    pub expires: Option<String>,
    /// How many servers it may be activated on (a failover network counts as one).
    #[serde(default = "one")]
    pub servers: u32,
    /// How many members a failover network it is activated for may have (its failover count);
    /// 1: single servers only.
    #[serde(default = "three")]
    pub network_members: u32,
    #[serde(rename = "product")]
    pub products: Vec<ProductRule>,
}

fn one() -> u32 {
    1
}

fn three() -> u32 {
    3
}

impl Entitlement {
    fn expires(&self) -> Option<OffsetDateTime> {
        self.expires.as_deref().and_then(|e| parse_rfc3339(e).ok())
    }

    pub(super) fn license_for(&self, server_id: &str, now: OffsetDateTime) -> License {
        License {
            key: self.key.clone(),
            server_id: server_id.to_owned(),
            rules: Rules {
                serial_number: self.serial_number,
                issued: now.replace_nanosecond(0).unwrap_or(now),
                expires: self.expires(),
                max_users: self.max_users,
                products: self.products.clone(),
            },
        }
    }
}

impl Catalog {
    /// Reads and checks a catalog: unique principals and keys, valid secret hashes, and every
    /// entitlement a license the servers would accept.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the catalog {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("the catalog {} is not valid", path.display()))
    }

    /// [`Catalog::load`] of the text of a catalog file.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let catalog: Self = toml::from_str(text)?;
        let mut principals = HashSet::new();
        let mut keys = HashSet::new();
        for account in &catalog.accounts {
            if !principals.insert(account.principal.as_str()) {
                bail!(
                    "catalog: the account {:?} is listed twice",
                    account.principal
                );
            }
            if argon2::password_hash::PasswordHash::new(&account.secret_hash).is_err() {
                bail!(
                    "catalog: the secret_hash of {:?} is not a password hash; make one with \
                     `license-vendor hash-secret`",
                    account.principal
                );
            }
            for entitlement in &account.entitlements {
                if !keys.insert(entitlement.key.as_str()) {
                    bail!(
                        "catalog: the license key {:?} is listed twice",
                        entitlement.key
                    );
                }
                if entitlement.expires.is_some() && entitlement.expires().is_none() {
                    bail!(
                        "catalog: {:?}: expires is not an RFC 3339 time",
                        entitlement.key
                    );
                }
                if entitlement.servers == 0 {
                    bail!("catalog: {:?}: servers must be at least 1", entitlement.key);
                }
                // A sample server id: the rules are what is checked here.
                let sample = entitlement.license_for("00", OffsetDateTime::UNIX_EPOCH);
                license_file::check_rules(&sample)
                    .with_context(|| format!("catalog: license {:?}", entitlement.key))?;
            }
        }
        Ok(catalog)
    }

    pub(super) fn account(&self, principal: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.principal == principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::passwords::{hash_password, verify_password};

    #[test]
    fn the_example_catalog_loads_and_its_sample_account_has_the_documented_secret() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog.toml");
        let catalog = Catalog::load(&path).unwrap();
        let demo = catalog.account("demo").unwrap();
        assert!(verify_password(&demo.secret_hash, "demo-secret"));
        let keys: Vec<&str> = demo.entitlements.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["DEMO-PDFTOOLBOX-10", "DEMO-CREDITS"]);
    }

    #[test]
    fn a_catalog_mistake_stops_the_service_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        let hash = hash_password("x-secret").unwrap();
        let entitlement = |key: &str| {
            format!(
                "[[account.entitlement]]\nkey = \"{key}\"\nserial_number = 1\n\
                 [[account.entitlement.product]]\nproduct_id = 1\nmajor_version = 0\n\
                 product = \"P\"\nruncount = 1\ncredits = 0\npostpay = false\n"
            )
        };
        let cases = [
            (
                "[[account]]\nprincipal = \"a\"\nsecret_hash = \"plain\"\n".to_owned(),
                "not a password hash",
            ),
            (
                format!(
                    "[[account]]\nprincipal = \"a\"\nsecret_hash = \"{hash}\"\n{}{}",
                    entitlement("K"),
                    entitlement("K")
                ),
                "listed twice",
            ),
            (
                format!(
                    "[[account]]\nprincipal = \"a\"\nsecret_hash = \"{hash}\"\n{}",
                    entitlement("bad key")
                ),
                "license key",
            ),
            (
                "[[account]]\nprincipal = \"a\"\nsecret = \"x\"\n".to_owned(),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Catalog::load(&path).unwrap_err());
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
