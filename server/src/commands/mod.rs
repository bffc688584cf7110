//! The subcommands other than `serve`: what an administrator or a vendor types. Each writes its
//! result to the `out` it is given (standard output in the binary, a buffer in tests) and returns
//! an error with a sentence a person can act on.

pub mod bench;
pub mod cartridge;
pub mod client;
pub mod ledger;
pub mod license;
pub mod user;
pub mod vendor;

use std::{
    io::{self, Read, Write},
    path::Path,
};

use anyhow::{Context, bail};

use crate::{cli::DataDirArg, licensing::identity::ServerId, store::Store, sys::data_dir::DataDir};

/// Reads a file, or standard input for `-`.
fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// The store of the data directory (creating both if they do not exist yet).
async fn open_store(data_dir: &DataDirArg) -> anyhow::Result<Store> {
    let dir = DataDir::open(&data_dir.data_dir)?;
    Ok(Store::open(&dir.store_path()).await?)
}

/// A secret typed by a person: without echo on a terminal (twice, when `confirm`), else the
/// first line of standard input. Never from the command line, where `ps` would show it.
fn read_secret(prompt: &str, confirm: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}: "))?;
        if confirm && rpassword::prompt_password("again: ")? != first {
            bail!("the two {prompt}s differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("cannot read the {prompt} from standard input"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// `license-server server-id`: this server's id, created with the data directory if need be.
pub async fn server_id(data_dir: &DataDirArg, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let id = ServerId::of(&store).await;
    store.close().await;
    writeln!(out, "{}", id?)?;
    Ok(())
}
