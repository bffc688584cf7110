//! `license-vendor`: the vendor's tools (signing keys, license files, the licensing service).
//! Customers never get this program; `license-server` cannot sign anything.

use std::{
    io::{self, Write},
    process::ExitCode,
};

use clap::Parser;
use server::{
    TlsFiles, VendorConfig,
    cli::{VendorCli, VendorCommand},
    commands, logging, signals,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = VendorCli::parse();
    logging::init(cli.log.json());
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => logging::fail(cli.log.json(), &error),
    }
}

async fn run(command: VendorCommand) -> anyhow::Result<()> {
    match command {
        VendorCommand::Serve(args) => {
            let stop = signals::stop_logged()?;
            let running = server::start_vendor(VendorConfig {
                bind: args.bind,
                port: args.port,
                key: args.key,
                catalog: args.catalog,
                data_dir: args.data_dir,
                token_timeout: std::time::Duration::from_secs(args.token_timeout),
                tls: args
                    .tls_cert
                    .zip(args.tls_key)
                    .map(|(cert, key)| TlsFiles { cert, key }),
            })
            .await?;
            running.run_until(stop).await?;
            tracing::info!("stopped");
            Ok(())
        }
        VendorCommand::HashSecret => {
            let hash = commands::vendor::hash_secret()?;
            writeln!(io::stdout(), "{hash}")?;
            Ok(())
        }
        VendorCommand::CheckReceipt { file } => {
            commands::vendor::check_receipt(&file, &mut io::stdout())
        }
        VendorCommand::LedgerHeads {
            data_dir,
            server_id,
        } => commands::vendor_heads::list(&data_dir, server_id.as_deref(), &mut io::stdout()).await,
        VendorCommand::Keygen { out_dir } => commands::vendor::keygen(&out_dir, &mut io::stdout()),
        VendorCommand::Issue(args) => {
            if let (Some(request), Some(dir)) = (&args.request, &args.vendor_data_dir) {
                commands::vendor_heads::record_request(request, dir, &mut io::stderr()).await?;
            }
            // The license file goes to stdout; a note about `--out` goes to stderr.
            if args.out.is_some() {
                commands::vendor::issue(&args, &mut io::stderr())
            } else {
                commands::vendor::issue(&args, &mut io::stdout())
            }
        }
    }
}
