//! `license-server license install | list | verify | remove | deactivate`.

use std::{io::Write, path::Path};

use anyhow::Context;
use models::License;
use serde_json::json;
use time::OffsetDateTime;

use super::inputs::{cli_actor, read_input};
use crate::{
    app::SERVER_KEY_FILE,
    cli::{DataDirArg, LicenseFileArgs, TrustArgs},
    failover::config as network,
    licensing::{
        dir::{Installed, LicenseDir, Scan, verify_new},
        file::LicenseError,
        host,
        identity::{Binding, ServerId, network_id},
        install::{self, Fit, InstallError, Installation, RemoveError},
        keys::{KeyPair, TrustedKeys},
        receipt, sealed,
    },
    store::Store,
    sys::{
        atomic_file::{self, Mode},
        data_dir::DataDir,
        timestamp::rfc3339,
    },
};

/// What every license command works on.
struct Opened {
    store: Store,
    binding: Binding,
    trusted: TrustedKeys,
    dir: LicenseDir,
}

impl Opened {
    async fn open(data_dir: &DataDirArg, trust: &TrustArgs) -> anyhow::Result<Self> {
        let trusted = sealed::trusted_keys(&trust.vendor_public_keys)?;
        let dir = DataDir::open(&data_dir.data_dir)?;
        let store = Store::open(&dir.store_path()).await?;
        let binding = ServerId::bound(&store, &host::detect()?)
            .await?
            .with_network(network::read(dir.path())?.map(|m| network_id(m.server_ids())));
        Ok(Self {
            store,
            binding,
            trusted,
            dir: LicenseDir::new(dir.path()),
        })
    }

    /// The file's bytes (read first: a missing file is the likelier mistake) and the data dir.
    async fn with_file(args: &LicenseFileArgs) -> anyhow::Result<(&Path, Vec<u8>, Self)> {
        let bytes = read_input(&args.file)?;
        let opened = Self::open(&args.data_dir, &args.trust).await?;
        Ok((&args.file, bytes, opened))
    }

    async fn scan(&self) -> anyhow::Result<Scan> {
        let installs = self.store.installs().await?;
        self.dir
            .scan(&self.trusted, &self.binding, &installs)
            .with_context(|| format!("cannot read {}", self.dir.path().display()))
    }
}

fn refused(file: &Path, error: &LicenseError) -> anyhow::Error {
    anyhow::anyhow!("{} is refused: {error} [{}]", file.display(), error.code())
}

pub async fn install(args: &LicenseFileArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (file, bytes, cx) = Opened::with_file(args).await?;
    let outcome = cx
        .dir
        .install(
            bytes,
            &cx.trusted,
            &cx.binding,
            &cx.store,
            OffsetDateTime::now_utc(),
            Some(&cli_actor()),
        )
        .await;
    cx.store.close().await;
    match outcome {
        Ok(Installation::Installed(installed)) => {
            writeln!(out, "installed {}", installed.file.display())?;
            describe(&installed.verified.license, out)?;
        }
        Ok(Installation::Replaced {
            installed,
            replaced,
        }) => {
            writeln!(
                out,
                "installed {}: a newer issue of license {}, which replaces the one issued {}",
                installed.file.display(),
                installed.key(),
                rfc3339(replaced.verified.license.rules.issued)
            )?;
            describe(&installed.verified.license, out)?;
        }
        Ok(Installation::AlreadyInstalled(installed)) => {
            writeln!(
                out,
                "already installed as {}; nothing changed",
                installed.file.display()
            )?;
            describe(&installed.verified.license, out)?;
        }
        Err(InstallError::License(error)) => return Err(refused(file, &error)),
        Err(InstallError::Io(error)) => return Err(error.context("the license was not installed")),
    }
    Ok(())
}

pub async fn verify(args: &LicenseFileArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (file, bytes, cx) = Opened::with_file(args).await?;
    let scan = cx.scan().await;
    cx.store.close().await;
    let verified = verify_new(&bytes, &cx.trusted, &cx.binding, OffsetDateTime::now_utc())
        .map_err(|e| refused(file, &e))?;
    let scan = scan?;
    let note = match install::fit(&scan, &verified).map_err(|e| refused(file, &e))? {
        Fit::Same(_) => ", already installed".to_owned(),
        Fit::Replaces(old) => format!(
            ", a newer issue of the installed license (issued {}), which it would replace",
            rfc3339(old.verified.license.rules.issued)
        ),
        Fit::New => String::new(),
    };
    writeln!(
        out,
        "valid: signed by vendor key {}, bound to this server{note}",
        verified.key_id,
    )?;
    describe(&verified.license, out)?;
    Ok(())
}

pub async fn remove(
    key: &str,
    trust: &TrustArgs,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let removed = remove_installed(key, trust, data_dir).await?;
    writeln!(
        out,
        "removed license {} (serial {}); its cartridges no longer grant. Licenses held from it stay \
         with their jobs until released.",
        removed.key(),
        removed.serial_number()
    )?;
    Ok(())
}

/// `license deactivate`: removes the license and writes the signed receipt to `file` (or `out`).
pub async fn deactivate(
    key: &str,
    file: Option<&Path>,
    trust: &TrustArgs,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // The key first: a data directory without one cannot sign, and nothing is removed then.
    let server_key = KeyPair::load(&data_dir.data_dir.join(SERVER_KEY_FILE))?;
    let cx = Opened::open(data_dir, trust).await?;
    let result = deactivate_in(&cx, key, &server_key, file, out).await;
    cx.store.close().await;
    result
}

/// The receipt is made and written before the license goes, so a removal never lacks its
/// receipt; if the removal then fails, the receipt is taken back.
async fn deactivate_in(
    cx: &Opened,
    key: &str,
    server_key: &KeyPair,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let scan = cx.scan().await?;
    let installed = scan.find(key).ok_or_else(|| not_installed(key, &cx.dir))?;
    let text = receipt::create(installed, server_key, OffsetDateTime::now_utc())?;
    if let Some(file) = file {
        atomic_file::replace(file, text.as_bytes(), Mode::Public)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    if let Err(e) = remove_in(cx, key).await {
        if let Some(file) = file {
            let _ = std::fs::remove_file(file);
        }
        return Err(e);
    }
    match file {
        Some(file) => writeln!(
            out,
            "removed license {key} and wrote the deactivation receipt {}: give it to the vendor to \
             free the activation for server {}",
            file.display(),
            installed.verified.license.server_id
        )?,
        None => write!(out, "{text}")?,
    }
    Ok(())
}

async fn remove_installed(
    key: &str,
    trust: &TrustArgs,
    data_dir: &DataDirArg,
) -> anyhow::Result<Installed> {
    let cx = Opened::open(data_dir, trust).await?;
    let removed = remove_in(&cx, key).await;
    cx.store.close().await;
    removed
}

async fn remove_in(cx: &Opened, key: &str) -> anyhow::Result<Installed> {
    let removed = cx
        .dir
        .remove(
            key,
            &cx.trusted,
            &cx.binding,
            &cx.store,
            OffsetDateTime::now_utc(),
            &cli_actor(),
        )
        .await;
    match removed {
        Ok(removed) => Ok(removed),
        Err(RemoveError::NotInstalled(key)) => Err(not_installed(&key, &cx.dir)),
        Err(RemoveError::Io(e)) => Err(e.context("the license was not removed")),
    }
}

fn not_installed(key: &str, dir: &LicenseDir) -> anyhow::Error {
    anyhow::anyhow!(
        "no license with the key {key} is installed in {}; `license list` shows the keys",
        dir.path().display()
    )
}

pub async fn list(
    json: bool,
    trust: &TrustArgs,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let cx = Opened::open(data_dir, trust).await?;
    let scan = cx.scan().await;
    let pools = cx.store.pools().await;
    cx.store.close().await;
    let (scan, pools) = (scan?, pools?);
    let now = OffsetDateTime::now_utc();
    let active = scan.active(now).map(|l| l.key().to_owned());
    // A license of the id this data directory had before it moved here: `moved` while the
    // grace lasts (the active one may be such), `moved-stopped` once it no longer counts.
    let status = |installed: &Installed| match installed.bound_until {
        Some(until) if now >= until => "moved-stopped",
        _ if Some(installed.key()) == active.as_deref() => "active",
        Some(_) => "moved",
        None if installed.expired_at(now) => "expired",
        None => "valid",
    };
    if json {
        let licenses: Vec<_> = scan
            .licenses
            .iter()
            .map(|l| {
                json!({
                    "license": l.verified.license,
                    "status": status(l),
                    "file": l.file,
                    "installed": rfc3339(l.installed),
                    "pool": pools.get(&l.serial_number()),
                })
            })
            .collect();
        let rejected: Vec<_> = scan
            .rejected
            .iter()
            .map(|r| json!({"file": r.file, "reason": r.reason}))
            .collect();
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({"licenses": licenses, "rejected": rejected}),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    if scan.licenses.is_empty() {
        writeln!(out, "no license installed in {}", cx.dir.path().display())?;
    }
    for installed in &scan.licenses {
        let rules = &installed.verified.license.rules;
        writeln!(
            out,
            "{}  {}  serial {}  pool {}  installed {}  expires {}",
            installed.key(),
            status(installed),
            rules.serial_number,
            pools
                .get(&installed.serial_number())
                .map_or("(default)", String::as_str),
            rfc3339(installed.installed),
            rules.expires.map_or_else(|| "never".to_owned(), rfc3339),
        )?;
        describe_products(&installed.verified.license, out)?;
    }
    for rejected in &scan.rejected {
        writeln!(
            out,
            "unusable: {}: {}",
            rejected.file.display(),
            rejected.reason
        )?;
    }
    Ok(())
}

fn describe(license: &License, out: &mut dyn Write) -> anyhow::Result<()> {
    let rules = &license.rules;
    writeln!(
        out,
        "license {} (serial {}) for server {}\n  issued {}, expires {}, licensed users: {}",
        license.key,
        rules.serial_number,
        license.server_id,
        rfc3339(rules.issued),
        rules.expires.map_or_else(|| "never".to_owned(), rfc3339),
        rules
            .max_users
            .map_or_else(|| "no limit".to_owned(), |n| n.to_string()),
    )?;
    describe_products(license, out)
}

fn describe_products(license: &License, out: &mut dyn Write) -> anyhow::Result<()> {
    for p in &license.rules.products {
        let version = match p.major_version {
            0 => "any version".to_owned(),
            v => format!("version {v}"),
        };
        let billing = if p.postpay { ", postpay" } else { "" };
        writeln!(
            out,
            "  product {} {} ({version}): runcount {}, credits {}{billing}",
            p.product_id, p.product, p.runcount, p.credits
        )?;
    }
    Ok(())
}
