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
    io::{self, Read},
    path::Path,
};

use anyhow::Context;

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
