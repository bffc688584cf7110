//! `license-server user add | passwd | remove | list`.

use std::io::Write;

use anyhow::{Context, bail};
use time::OffsetDateTime;

use super::inputs::{cli_actor, open_store, read_secret};
use crate::{
    auth::{Role, logins::FIRST_ADMIN, passwords::hash_password, roles::permissions},
    cli::{DataDirArg, RoleArg},
    ledger::Event,
    store::{AdminUserRow, NewLedgerRow, Store, StoreError},
    sys::data_dir::INITIAL_PASSWORD_FILE,
};

/// Shortest password accepted.
const MIN_PASSWORD: usize = 8;

/// The password, from a no-echo prompt on a terminal or the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let password = read_secret("password", true)?;
    if password.chars().count() < MIN_PASSWORD {
        bail!("the password must have at least {MIN_PASSWORD} characters");
    }
    Ok(password)
}

fn check_principal(principal: &str) -> anyhow::Result<()> {
    if principal.trim().is_empty()
        || principal.len() > 128
        || principal.chars().any(char::is_control)
    {
        bail!("the principal must be 1 to 128 bytes without control characters");
    }
    Ok(())
}

/// Applies a change to the administrator `principal` with its ledger row (`what` changed, done
/// by the person at this command line), and closes the store; whether the change applied.
async fn change(
    data_dir: &DataDirArg,
    principal: &str,
    what: &str,
    role: Option<Role>,
    apply: impl AsyncFnOnce(&Store, NewLedgerRow) -> Result<bool, StoreError>,
) -> anyhow::Result<bool> {
    let store = open_store(data_dir).await?;
    let event = Event::AdminUserChanged {
        principal: principal.to_owned(),
        change: what.to_owned(),
        role: role.map(|r| r.as_str().to_owned()),
        by: cli_actor(),
    };
    let applied = apply(&store, event.row(OffsetDateTime::now_utc())).await;
    store.close().await;
    Ok(applied?)
}

pub async fn add(
    principal: &str,
    role: RoleArg,
    scope: Option<&str>,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    check_principal(principal)?;
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Viewer => Role::Viewer,
    };
    let password = read_password()?;
    let hash = hash_password(&password)?;
    let user = AdminUserRow {
        principal: principal.to_owned(),
        password_hash: hash,
        role: role.as_str().into(),
        scope: scope.map(str::to_owned),
    };
    let added = change(
        data_dir,
        principal,
        "added",
        Some(role),
        async |store, row| store.add_admin_user(&user, row).await,
    )
    .await;
    if !added? {
        bail!("{principal} exists already; use `user passwd` or `user remove`");
    }
    writeln!(
        out,
        "added {principal}: {}",
        permissions(role, scope).join(", ")
    )?;
    Ok(())
}

pub async fn passwd(
    principal: &str,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let password = read_password()?;
    let hash = hash_password(&password)?;
    let changed = change(data_dir, principal, "password", None, async |store, row| {
        store.set_admin_password(principal, &hash, row).await
    })
    .await;
    if !changed? {
        bail!("there is no administrator {principal}");
    }
    writeln!(
        out,
        "new password set for {principal}; their logged-in sessions ended"
    )?;
    forget_initial_password(principal, data_dir, out)
}

pub async fn remove(
    principal: &str,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let removed = change(data_dir, principal, "removed", None, async |store, row| {
        store.remove_admin_user(principal, row).await
    })
    .await;
    if !removed? {
        bail!("there is no administrator {principal}");
    }
    writeln!(out, "removed {principal}; their logged-in sessions ended")?;
    forget_initial_password(principal, data_dir, out)
}

/// Deletes `initial-admin-password` once the first administrator's password is changed (or the
/// administrator removed): the file would only keep a stale secret lying around.
fn forget_initial_password(
    principal: &str,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if principal != FIRST_ADMIN {
        return Ok(());
    }
    let file = data_dir.data_dir.join(INITIAL_PASSWORD_FILE);
    match std::fs::remove_file(&file) {
        Ok(()) => {
            writeln!(out, "deleted {}", file.display())?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot delete {}", file.display())),
    }
}

pub async fn list(data_dir: &DataDirArg, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let users = store.admin_users().await;
    store.close().await;
    let users = users?;
    if users.is_empty() {
        writeln!(
            out,
            "no administrators (the server creates `admin` at its next start)"
        )?;
    }
    for user in users {
        let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
        writeln!(
            out,
            "{}  {}  {}",
            user.principal,
            role.as_str(),
            permissions(role, user.scope.as_deref()).join(", ")
        )?;
    }
    Ok(())
}
