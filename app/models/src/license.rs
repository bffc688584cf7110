//! A license: what a vendor grants one license server. It is the signed content of a license file
//! and, unchanged, what the admin API shows (`shared/spec/licensing-api.md`: `{"key", "serverId",
//! "rules"}`).
//!
//! Unknown fields are refused rather than ignored: a license is a contract, and a field this
//! version does not understand (a new kind of limit, say) must not be silently dropped.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct License {
    /// Unique license key; also the name of its file in the licenses directory.
    pub key: String,
    /// The only server that accepts this license (`license-server server-id` prints it).
    #[serde(rename = "serverId")]
    pub server_id: String,
    pub rules: Rules,
}

/// The terms of a license.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The cartridge's serial: what the status page lists as a location, and what a cartridge pool
    /// assignment names.
    pub serial_number: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub issued: OffsetDateTime,
    /// From this instant on the license grants nothing; `None` = never expires.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires: Option<OffsetDateTime>,
    /// How many distinct licensed users there may be; `None` = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<u32>,
    pub products: Vec<ProductRule>,
}

/// What the license grants for one product and major version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductRule {
    pub product_id: u32,
    /// 0 = any version.
    pub major_version: u32,
    pub product: String,
    /// Processes that may run at once.
    pub runcount: u32,
    /// Prepaid credits; one credit = one second of processing.
    pub credits: u64,
    /// Credits may be used beyond those loaded and are billed afterwards.
    pub postpay: bool,
}

impl Rules {
    /// Whether the license has expired at `now` (an expiry is the first instant it no longer
    /// counts).
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LICENSE: &str = r#"{
        "key": "ACME-0001",
        "serverId": "FAB348C4",
        "rules": {
            "serial_number": 200000512,
            "issued": "2026-11-01T10:00:00Z",
            "expires": "2027-11-01T00:00:00Z",
            "products": [
                {"product_id": 1000, "major_version": 10, "product": "callas pdfToolbox CLI",
                 "runcount": 8, "credits": 0, "postpay": false}
            ]
        }
    }"#;

    #[test]
    fn the_admin_representation_has_key_server_id_and_rules() {
        let license: License = serde_json::from_str(LICENSE).unwrap();
        assert_eq!(license.server_id, "FAB348C4");
        assert_eq!(license.rules.max_users, None);
        let json = serde_json::to_value(&license).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["key", "rules", "serverId"]);
        assert_eq!(json["rules"]["expires"], "2027-11-01T00:00:00Z");
        assert!(json["rules"].get("max_users").is_none());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let with_extra = LICENSE.replace(r#""postpay": false"#, r#""postpay": false, "seats": 9"#);
        let err = serde_json::from_str::<License>(&with_extra).unwrap_err();
        assert!(err.to_string().contains("unknown field `seats`"), "{err}");
    }

    #[test]
    fn expiry_is_the_first_instant_without_the_license() {
        let license: License = serde_json::from_str(LICENSE).unwrap();
        let expires = license.rules.expires.unwrap();
        assert!(!license.rules.expired_at(expires - time::Duration::SECOND));
        assert!(license.rules.expired_at(expires));
    }
}
