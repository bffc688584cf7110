//! `license-server restore --from FILE --data-dir DIR`: a backup ([`super::backup`]) back into a
//! data directory, all or nothing.
//!
//! The archive is a stranger's bytes until checked: its first entry must be the manifest; every
//! other entry must be a plain file the manifest lists, at a path a data directory has (no `..`,
//! no links, nothing outside), of the size the manifest says (so nothing larger than announced is
//! ever written), with its SHA-256; and every file the manifest lists must come. It is unpacked
//! into a temporary directory beside DIR, the restored ledger is verified as `ledger verify` does
//! (the chain, the signed head, the snapshots), and only then is the directory renamed to DIR. A
//! damaged archive leaves nothing behind, and DIR is never one that holds anything already.

use std::{
    collections::HashMap,
    fs,
    io::{self, Read, Write},
    path::Path,
};

use anyhow::{Context, bail};

use super::{
    backup::{
        FORMAT, MANIFEST, Manifest, ManifestFile, STORE_FILE, allowed_path, copy_hashed,
        staging_beside,
    },
    ledger::verify_store,
};
use crate::store::Store;

/// The largest manifest read; a real one is a few kilobytes.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;
/// The most files a backup may list.
const MAX_FILES: usize = 1_000_000;

/// Restores the backup `from` into the new data directory `data_dir`.
pub async fn restore(from: &Path, data_dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let empty_dir = match fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty: restore into a new directory (or move this one \
                     away first)",
                    data_dir.display()
                );
            }
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", data_dir.display())),
    };
    let staging = staging_beside(data_dir, ".license-server-restore-")?;
    let archive =
        fs::File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let manifest = unpack(archive, staging.path())
        .with_context(|| format!("{} is not a usable backup", from.display()))?;

    let store = Store::open(&staging.path().join(STORE_FILE)).await?;
    let agrees = check_store(&store, &manifest).await;
    let verified = match agrees {
        Ok(()) => verify_store(&store, staging.path(), out).await,
        Err(e) => Err(e),
    };
    store.close().await;
    verified.with_context(|| {
        format!(
            "{}: the restored ledger does not verify; nothing was restored",
            from.display()
        )
    })?;
    if empty_dir {
        fs::remove_dir(data_dir)
            .with_context(|| format!("cannot replace the empty {}", data_dir.display()))?;
    }
    // A data directory is its owner's only: it holds the server key.
    #[cfg(unix)]
    fs::set_permissions(
        staging.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let staged = staging.keep();
    fs::rename(&staged, data_dir).with_context(|| {
        let _ = fs::remove_dir_all(&staged);
        format!("cannot move the restored files to {}", data_dir.display())
    })?;
    writeln!(
        out,
        "restored {} files of server {} (backup of {}, ledger up to entry {}) into {}; start the \
         server with --data-dir {} (on another machine it gets a new server id: see the README's \
         data directory section)",
        manifest.files.len(),
        manifest.server_id,
        manifest.created,
        manifest.ledger_tail.as_ref().map_or(0, |(seq, _)| *seq),
        data_dir.display(),
        data_dir.display()
    )?;
    Ok(())
}

/// The store restored is the one the manifest describes.
async fn check_store(store: &Store, manifest: &Manifest) -> anyhow::Result<()> {
    let server_id = store.identity().await?.server_id;
    if server_id != manifest.server_id {
        bail!(
            "the store is server {server_id}'s, the manifest says {}",
            manifest.server_id
        );
    }
    let tail = store.ledger_tail().await?;
    if tail != manifest.ledger_tail {
        bail!(
            "the store's ledger ends at {:?}, the manifest says {:?}",
            tail,
            manifest.ledger_tail
        );
    }
    Ok(())
}

/// Unpacks `archive` into `into`, checking every entry against the manifest; the manifest.
fn unpack(archive: impl Read, into: &Path) -> anyhow::Result<Manifest> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut entries = tar
        .entries()
        .context("the archive cannot be read (not a .tar.gz?)")?;
    let manifest = match entries.next() {
        Some(entry) => read_manifest(entry.context("the archive is damaged")?)?,
        None => bail!("the archive is empty"),
    };
    let mut expected: HashMap<&str, &ManifestFile> = HashMap::new();
    for file in &manifest.files {
        if !allowed_path(&file.path) {
            bail!(
                "the manifest lists {:?}, which no data directory has",
                file.path
            );
        }
        if expected.insert(file.path.as_str(), file).is_some() {
            bail!("the manifest lists {:?} twice", file.path);
        }
    }
    if !expected.contains_key(STORE_FILE) {
        bail!("the manifest lists no store ({STORE_FILE})");
    }
    for entry in entries {
        let mut entry = entry.context("the archive is damaged")?;
        let path = entry
            .path()
            .context("an entry's name is not readable")?
            .to_str()
            .map(str::to_owned)
            .context("an entry's name is not UTF-8")?;
        let Some(file) = expected.remove(path.as_str()) else {
            bail!("the archive holds {path:?}, which the manifest does not list (or lists once)");
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("{path:?} is not a plain file");
        }
        if entry.size() != file.bytes {
            bail!(
                "{path:?} has {} bytes, the manifest says {}",
                entry.size(),
                file.bytes
            );
        }
        let target = into.join(&path);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut written = create_private(&target)?;
        let (copied, sha256) = copy_hashed(&mut entry, &mut written, file.bytes)
            .with_context(|| format!("the archive is damaged in {path:?}"))?;
        if copied < file.bytes {
            bail!("the archive ends inside {path:?}");
        }
        written.sync_all()?;
        if sha256 != file.sha256 {
            bail!("{path:?} is damaged: its SHA-256 is not the manifest's");
        }
    }
    if let Some(missing) = expected.keys().next() {
        bail!(
            "the archive ends before {missing:?} (and {} more files)",
            expected.len() - 1
        );
    }
    Ok(manifest)
}

fn read_manifest(entry: tar::Entry<'_, impl Read>) -> anyhow::Result<Manifest> {
    if entry.path().ok().as_deref() != Some(Path::new(MANIFEST)) {
        bail!("its first entry is not {MANIFEST}: not a license-server backup");
    }
    if entry.size() > MAX_MANIFEST_BYTES {
        bail!("its {MANIFEST} is too large ({} bytes)", entry.size());
    }
    let mut text = Vec::new();
    entry
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut text)
        .context("the archive is damaged in its manifest")?;
    let manifest: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("its {MANIFEST} is not valid"))?;
    if manifest.format != FORMAT {
        bail!("not a license-server backup (format {:?})", manifest.format);
    }
    if manifest.format_version != 1 {
        bail!(
            "a backup of format version {} (written by license-server {}); this version reads \
             version 1",
            manifest.format_version,
            manifest.server_version
        );
    }
    if manifest.files.len() > MAX_FILES {
        bail!("the manifest lists {} files", manifest.files.len());
    }
    Ok(manifest)
}

fn create_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
