//! `license-server user add | passwd | remove | list`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use time::OffsetDateTime;

use crate::{
    auth::{self, Role},
    cli::{DataDirArg, RoleArg},
    data_dir::DataDir,
    ledger::Event,
    store::{AdminUserRow, Store},
};

/// Shortest password accepted.
const MIN_PASSWORD: usize = 8;

async fn open_store(data_dir: &DataDirArg) -> anyhow::Result<Store> {
    let dir = DataDir::open(&data_dir.data_dir)?;
    Ok(Store::open(&dir.store_path()).await?)
}

/// The password, from a no-echo prompt on a terminal or the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
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
    let hash = auth::hash_password(&password)?;
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
        auth::permissions(role, scope).join(", ")
    )?;
    Ok(())
}

pub async fn passwd(
    principal: &str,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let password = read_password()?;
    let hash = auth::hash_password(&password)?;
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
            auth::permissions(role, user.scope.as_deref()).join(", ")
        )?;
    }
    Ok(())
}
