//! `license-server users list | clear`: the licensed users of the product (the `user` that
//! sessions name), from the command line, so that a full user limit can be cleared without the
//! admin API. Works whether or not the server runs: it reads the store, and a clear is written to
//! the ledger with the person who did it.

use std::{io::Write, time::Duration};

use anyhow::bail;

use super::inputs::{cli_actor, open_store};
use crate::{auth::Auth, cli::DataDirArg};

pub async fn list(data_dir: &DataDirArg, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let users = store.licensed_users().await;
    store.close().await;
    let users = users?;
    if users.is_empty() {
        writeln!(out, "no licensed users")?;
        return Ok(());
    }
    let width = users.iter().map(|u| u.realm.len()).max().unwrap_or(0);
    for user in &users {
        writeln!(
            out,
            "{:width$}  {}  last seen {}",
            user.realm, user.principal, user.last_access
        )?;
    }
    let count = users.len();
    writeln!(
        out,
        "{count} licensed user{}",
        if count == 1 { "" } else { "s" }
    )?;
    Ok(())
}

/// Clears every licensed user, or the one `(realm, principal)`.
pub async fn clear(
    who: Option<(&str, &str)>,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let auth = Auth::new(store.clone(), Duration::ZERO);
    let cleared = auth.clear_licensed_users(who, &cli_actor()).await;
    store.close().await;
    let (removed, remaining) = cleared?;
    match who {
        Some((realm, principal)) if removed == 0 => {
            bail!("{principal} of realm {realm} is not a licensed user")
        }
        Some((realm, principal)) => writeln!(
            out,
            "cleared {principal} of realm {realm}; {remaining} licensed users remain"
        )?,
        None => writeln!(out, "cleared {removed} licensed users")?,
    }
    Ok(())
}
