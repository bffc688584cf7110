//! `license-server server-id`.

use std::io::Write;

use super::inputs::open_store;
use crate::{cli::DataDirArg, licensing::identity::ServerId};

/// `license-server server-id`: this server's id, created with the data directory if need be.
pub async fn print(data_dir: &DataDirArg, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(data_dir).await?;
    let id = ServerId::of(&store).await;
    store.close().await;
    writeln!(out, "{}", id?)?;
    Ok(())
}
