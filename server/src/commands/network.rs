//! `license-server network identity | init`: forming a failover network.
//!
//! Each member has a *token*, its server id (bound to its machine) and its server key's public
//! half, which `identity` prints. `init` writes the same members' list (`network.toml`) into
//! every member's data directory, after checking that this data directory is one of them and has
//! no history of its own (the network's ledger is one chain, from the start). Each member then
//! starts with `serve` as usual: the first time, they form the network and elect a coordinator.

use std::io::Write;

use anyhow::{Context, bail};

use super::inputs::open_store;
use crate::{
    app::SERVER_KEY_FILE,
    cli::{DataDirArg, MembersArgs},
    failover::config::{self, NetworkConfig},
    licensing::{
        identity::{ServerId, network_id},
        keys::KeyPair,
    },
    store::Store,
    sys::{
        atomic_file::{self, Mode},
        data_dir::DataDir,
    },
};

/// This data directory's server id and key, created if need be.
async fn own(data_dir: &DataDirArg) -> anyhow::Result<(Store, ServerId, KeyPair)> {
    let store = open_store(data_dir).await?;
    let server_id = ServerId::of(&store).await?;
    let key = KeyPair::load_or_create(&data_dir.data_dir.join(SERVER_KEY_FILE))?;
    Ok((store, server_id, key))
}

/// `network identity`: this member's token.
pub async fn identity(data_dir: &DataDirArg, out: &mut dyn Write) -> anyhow::Result<()> {
    let (store, server_id, key) = own(data_dir).await?;
    store.close().await;
    let token = config::token(server_id.as_str(), &key.signing_key().verifying_key());
    writeln!(out, "{token}")?;
    Ok(())
}

/// `network init --member HOST:PORT=TOKEN ...`: makes this data directory a member of a network
/// it forms with the others (`joins` false), or of a network that runs already, which its
/// coordinator adds it to (`network join`).
pub async fn init(args: &MembersArgs, joins: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let (force, data_dir) = (args.force, &args.data_dir);
    let list = NetworkConfig::from_tokens(&args.members)?.joining(joins);
    let (store, server_id, key) = own(data_dir).await?;
    let result = write_list(&list, &store, &server_id, &key, force, data_dir).await;
    store.close().await;
    let me = result?;
    writeln!(
        out,
        "this data directory is member {me} of a failover network of {} members",
        list.count()
    )?;
    writeln!(out, "network id: {}", network_id(list.server_ids()))?;
    if joins {
        writeln!(
            out,
            "start it with `license-server serve`, then have the network take it in: \
             PUT /server/manage/network/members on any member, with this list"
        )?;
    } else {
        writeln!(
            out,
            "run the same `network init` on every member, then start each with `license-server \
             serve`; a license for the network is bound to the network id"
        )?;
    }
    Ok(())
}

async fn write_list(
    list: &NetworkConfig,
    store: &Store,
    server_id: &ServerId,
    key: &KeyPair,
    force: bool,
    data_dir: &DataDirArg,
) -> anyhow::Result<String> {
    let verifying = key.signing_key().verifying_key();
    let token = config::token(server_id.as_str(), &verifying);
    let me = list
        .member_id(&verifying)
        .and_then(|id| list.member(id))
        .with_context(|| {
            format!(
                "the list does not name this data directory's member: its token is {token} \
                 (`license-server network identity`)"
            )
        })?;
    if me.server_id != server_id.as_str() {
        bail!(
            "the list gives this member's key with server id {}, but its server id is {server_id}; \
             its token is {token}",
            me.server_id
        );
    }
    let dir = DataDir::open(&data_dir.data_dir)?;
    if let Some(existing) = config::read(dir.path())?
        && existing != *list
        && !force
    {
        bail!(
            "{} already lists other members; a network's members change while it runs (see the \
             README), or give --force to replace the list of a network that has not run yet",
            dir.path().join(config::FILE).display()
        );
    }
    if !store.is_member().await?
        && let Some((entries, _)) = store.ledger_tail().await?
    {
        bail!(
            "this data directory has {entries} ledger entries of its own: a member of a failover \
             network starts with an empty ledger (the network's is one chain). Use a new data \
             directory for the member"
        );
    }
    store.mark_member().await?;
    let file = dir.path().join(config::FILE);
    atomic_file::replace(&file, list.to_toml().as_bytes(), Mode::Public)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(me.addr.clone())
}
