//! `license-server user add | passwd | remove | list`.

use std::io::Write;

use anyhow::bail;
use time::OffsetDateTime;

use super::{open_store, read_secret};
use crate::{
    auth::{Role, passwords::hash_password, roles::permissions},
    cli::{DataDirArg, RoleArg},
    ledger::Event,
    store::AdminUserRow,
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

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
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
    let store = open_store(data_dir).await?;
    let event = Event::AdminUserChanged {
        principal: principal.to_owned(),
        change: "added".into(),
        role: Some(role.as_str().into()),
        by: cli_actor(),
    };
    let user = AdminUserRow {
        principal: principal.to_owned(),
        password_hash: hash,
        role: role.as_str().into(),
        scope: scope.map(str::to_owned),
    };
    let added = store
        .add_admin_user(&user, event.row(OffsetDateTime::now_utc()))
        .await;
    store.close().await;
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
    let store = open_store(data_dir).await?;
    let event = Event::AdminUserChanged {
        principal: principal.to_owned(),
        change: "password".into(),
        role: None,
        by: cli_actor(),
    };
    let changed = store
        .set_admin_password(principal, &hash, event.row(OffsetDateTime::now_utc()))
        .await;
    store.close().await;
    if !changed? {
        bail!("there is no administrator {principal}");
    }
    writeln!(
        out,
        "new password set for {principal}; their logged-in sessions ended"
    )?;
    Ok(())
}

pub async fn remove(
    principal: &str,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let event = Event::AdminUserChanged {
        principal: principal.to_owned(),
        change: "removed".into(),
        role: None,
        by: cli_actor(),
    };
    let removed = store
        .remove_admin_user(principal, event.row(OffsetDateTime::now_utc()))
        .await;
    store.close().await;
    if !removed? {
        bail!("there is no administrator {principal}");
    }
    writeln!(out, "removed {principal}; their logged-in sessions ended")?;
    Ok(())
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
