//! `license-server`: what a customer installs (the server, its administration, the license
//! client). The vendor's tools are in `license-vendor` (`main_vendor.rs`).

use std::{io, process::ExitCode};

use server::{
    ServeConfig, TlsFiles,
    cli::{
        CartridgeCommand, ClientCommand, Command, LedgerCommand, LicenseCommand, NetworkCommand,
        ServeArgs, UserCommand, UsersCommand,
    },
    commands, logging, signals,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = server::cli::parse();
    logging::init(cli.log.json());
    let result = match cli.command {
        Command::Client(ClientCommand::Run(args)) => {
            return match commands::client::run(args).await {
                Ok(code) => code,
                Err(error) => logging::fail(cli.log.json(), &error),
            };
        }
        Command::Bench(args) => commands::bench::run(args, &mut io::stdout()).await,
        Command::User(command) => user(command).await,
        Command::Users(UsersCommand::List(data_dir)) => {
            commands::licensed_users::list(&data_dir, &mut io::stdout()).await
        }
        Command::Users(UsersCommand::Clear {
            realm,
            principal,
            data_dir,
        }) => {
            let who = realm.as_deref().zip(principal.as_deref());
            commands::licensed_users::clear(who, &data_dir, &mut io::stdout()).await
        }
        Command::Serve(args) => run_server(args).await,
        Command::Network(NetworkCommand::Identity(data_dir)) => {
            commands::network::identity(&data_dir, &mut io::stdout()).await
        }
        Command::Network(NetworkCommand::Init(args)) => {
            commands::network::init(&args, false, &mut io::stdout()).await
        }
        Command::Network(NetworkCommand::Join(args)) => {
            commands::network::init(&args, true, &mut io::stdout()).await
        }
        Command::GenerateManual { out_dir } => {
            commands::manual::generate(&out_dir, &mut io::stdout())
        }
        Command::Backup { to, data_dir } => {
            commands::backup::backup(&data_dir.data_dir, &to, &mut io::stdout()).await
        }
        Command::Restore { from, data_dir } => {
            commands::restore::restore(&from, &data_dir, &mut io::stdout()).await
        }
        Command::ServerId(args) => commands::server_id::print(&args, &mut io::stdout()).await,
        Command::License(command) => license(command).await,
        Command::Cartridge(CartridgeCommand::Assign {
            serial,
            pool,
            data_dir,
        }) => commands::cartridge::assign(serial, &pool, &data_dir, &mut io::stdout()).await,
        Command::Ledger(LedgerCommand::Verify(data_dir)) => {
            commands::ledger::verify(&data_dir, &mut io::stdout()).await
        }
        Command::Ledger(LedgerCommand::Export {
            format,
            out,
            since,
            until,
            kind,
            data_dir,
        }) => {
            let filter = server::LedgerFilter {
                since,
                until,
                kinds: kind.into_iter().flatten().collect(),
            };
            let mut stdout = io::BufWriter::new(io::stdout().lock());
            commands::ledger::export(format, filter, out.as_deref(), &data_dir, &mut stdout).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => logging::fail(cli.log.json(), &error),
    }
}

async fn run_server(args: ServeArgs) -> anyhow::Result<()> {
    let api_port = args.api_port().map_err(anyhow::Error::msg)?;
    let engine = args.engine().map_err(anyhow::Error::msg)?;
    let tls = args
        .tls_cert
        .clone()
        .zip(args.tls_key.clone())
        .map(|(cert, key)| TlsFiles { cert, key });
    let connections = server::ConnectionLimits {
        max_total: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        max_per_address: usize::try_from(args.max_connections_per_address).unwrap_or(usize::MAX),
        idle_timeout: std::time::Duration::from_secs(args.connection_idle_timeout),
    };
    let stop = signals::stop_logged()?;
    let running = server::start(ServeConfig {
        bind: args.bind,
        port: args.port,
        api_port,
        data_dir: args.data_dir.data_dir,
        serial_number: args.serial_number,
        vendor_public_keys: args.trust.vendor_public_keys,
        engine,
        connections,
        vendor_url: args.vendor_url,
        admin_idle_timeout: std::time::Duration::from_secs(args.session_idle_timeout),
        archive_after: args.ledger_archive_after.0,
        ledger_report_every: args.ledger_report_every.0,
        tls,
        tls_license_port: args.tls_license_port,
        vendor_ca: args.vendor_ca,
    })
    .await?;
    tracing::info!(
        license_addr = %running.license_addr,
        api_addr = %running.api_addr,
        server_id = %running.server_id,
        status_page = %running.status_page_url(),
        version = server::VERSION,
        "license server ready; status page at {}",
        running.status_page_url()
    );
    server::service::notify(&format!(
        "READY=1\nSTATUS=serving; status page at {}",
        running.status_page_url()
    ));
    running
        .run_until(async {
            stop.await;
            server::service::notify("STOPPING=1");
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn license(command: LicenseCommand) -> anyhow::Result<()> {
    let out = &mut io::stdout();
    match command {
        LicenseCommand::Install(args) => commands::license::install(&args, out).await,
        LicenseCommand::List {
            json,
            trust,
            data_dir,
        } => commands::license::list(json, &trust, &data_dir, out).await,
        LicenseCommand::Verify(args) => commands::license::verify(&args, out).await,
        LicenseCommand::Remove {
            key,
            trust,
            data_dir,
        } => commands::license::remove(&key, &trust, &data_dir, out).await,
        LicenseCommand::Deactivate {
            key,
            out: file,
            trust,
            data_dir,
        } => commands::license::deactivate(&key, file.as_deref(), &trust, &data_dir, out).await,
    }
}

async fn user(command: UserCommand) -> anyhow::Result<()> {
    let out = &mut io::stdout();
    match command {
        UserCommand::Add {
            principal,
            role,
            scope,
            data_dir,
        } => commands::user::add(&principal, role, scope.as_deref(), &data_dir, out).await,
        UserCommand::Passwd {
            principal,
            data_dir,
        } => commands::user::passwd(&principal, &data_dir, out).await,
        UserCommand::Remove {
            principal,
            data_dir,
        } => commands::user::remove(&principal, &data_dir, out).await,
        UserCommand::List(data_dir) => commands::user::list(&data_dir, out).await,
    }
}
