//! What the subcommands read: a file or standard input, a secret typed at a prompt, the data
//! directory's store.

use std::{
    io::{self, Read},
    path::Path,
};

use anyhow::{Context, bail};

use crate::{cli::DataDirArg, store::Store, sys::data_dir::DataDir};

/// Reads a file, or standard input for `-`.
pub(super) fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
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
pub(super) async fn open_store(data_dir: &DataDirArg) -> anyhow::Result<Store> {
    let dir = DataDir::open(&data_dir.data_dir)?;
    Ok(Store::open(&dir.store_path()).await?)
}

/// A secret typed by a person: without echo on a terminal (twice, when `confirm`), else the
/// first line of standard input. Never from the command line, where `ps` would show it.
pub(super) fn read_secret(prompt: &str, confirm: bool) -> anyhow::Result<String> {
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

/// Who a change made at this command line is recorded as done by, in the ledger.
pub(super) fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}
