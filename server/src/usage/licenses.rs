//! The license history: every issue of a license the ledger saw installed, with its removal or
//! replacement, folded with the totals (see [`crate::store::license_history`]). It is how the
//! Licenses screen lists what is no longer installed, and who installed what when.

use models::{LicenseHistory, LicenseIssue};
use time::OffsetDateTime;

use super::{index::Usage, report::FOLD_BEFORE_REPORT};
use crate::{licensing::file::peek, store::license_history::LicenseRecord};

/// The most issues listed: the latest installs.
pub const MOST_ISSUES: u32 = 500;

fn moment(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn some(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn issue(row: LicenseRecord) -> LicenseIssue {
    LicenseIssue {
        // The file was checked when it was installed; the ledger only shows it again.
        license: row.file.as_deref().and_then(|f| peek(f.as_bytes())),
        key: row.license_key,
        serial_number: u64::try_from(row.serial_number).unwrap_or(0),
        sha256: row.sha256,
        installed: moment(row.installed),
        installed_by: some(row.installed_by),
        removed: row.removed.map(moment),
        removed_by: row.removed_by.and_then(some),
        replaced_by: row.replaced_by,
    }
}

impl Usage {
    /// The latest [`MOST_ISSUES`] issues installed, the latest first, after folding in what the
    /// ledger has (a bounded amount: `complete` says whether that was all).
    pub async fn license_history(&self) -> anyhow::Result<LicenseHistory> {
        let locked = self.caught_up(FOLD_BEFORE_REPORT).await?;
        let rows = self.store.license_history(MOST_ISSUES).await?;
        Ok(LicenseHistory {
            licenses: rows.into_iter().map(issue).collect(),
            complete: locked.complete,
        })
    }
}
