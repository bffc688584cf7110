//! `license-server cartridge assign SERIAL POOL`.

use std::{collections::BTreeSet, io::Write};

use anyhow::{Context, bail};

use time::OffsetDateTime;

use crate::{
    cli::DataDirArg,
    ledger::Event,
    licensing::{dir::LicenseDir, file as license_file, pool},
    store::Store,
    sys::data_dir::DataDir,
};

pub async fn assign(
    serial: u64,
    pool_name: &str,
    data_dir: &DataDirArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let pool =
        pool::check_name(pool_name).map_err(|why| anyhow::anyhow!("pool {pool_name:?}: {why}"))?;
    let dir = DataDir::open(&data_dir.data_dir)?;
    let licenses = LicenseDir::new(dir.path());
    // Serials only name cartridges; the signatures are checked by whoever grants from them.
    // Refusing unknown serials catches typos that would otherwise silently assign nothing.
    let mut known = BTreeSet::new();
    for file in licenses
        .files()
        .with_context(|| format!("cannot read {}", licenses.path().display()))?
    {
        if let Some(license) = std::fs::read(&file)
            .ok()
            .and_then(|b| license_file::peek(&b))
        {
            known.insert(license.rules.serial_number);
        }
    }
    if !known.contains(&serial) {
        let list: Vec<_> = known.iter().map(u64::to_string).collect();
        bail!(
            "no installed license has the serial number {serial} (installed: {})",
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        );
    }
    let store = Store::open(&dir.store_path()).await?;
    let event = Event::CartridgeAssigned {
        serial_number: serial,
        pool: pool.map(str::to_owned),
    };
    let assigned = store
        .assign_pool(serial, pool, event.row(OffsetDateTime::now_utc()))
        .await;
    store.close().await;
    assigned?;
    match pool {
        Some(pool) => writeln!(out, "cartridge {serial} is now in pool {pool:?}")?,
        None => writeln!(out, "cartridge {serial} is now in the default pool")?,
    }
    Ok(())
}
