//! `license-server client run`: a program under a license.

use std::{process::ExitCode, time::Duration};

use models::{ErrorCode, OpenSession, RequestLicense, SessionOpened};
use tokio::process::Command;

use crate::{
    cli::ClientRunArgs,
    client::{ClientError, LicenseClient, new_request_id},
    licensing::identity::hostname,
    sys::signals,
};

/// sysexits' EX_TEMPFAIL: no license now, try again later.
pub const NO_LICENSE: u8 = 75;

pub async fn run(args: ClientRunArgs) -> anyhow::Result<ExitCode> {
    let mut client = LicenseClient::new(args.servers.clone())?;
    let command_line = args
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let opened = match client
        .open_session(&OpenSession {
            host: hostname(),
            message: args.message.clone().unwrap_or(command_line),
            pool: args.pool.clone(),
            user: None,
        })
        .await
    {
        Ok(opened) => opened,
        Err(e) => return Ok(no_license(&e)),
    };
    let session_id = opened.session_id;
    let granted = match client
        .request_license(
            &opened,
            &RequestLicense {
                request_id: new_request_id(),
                product_id: args.product_id,
                major_version: args.major_version,
                request_type: args.license_type.into(),
                wait_s: Some(args.wait),
            },
        )
        .await
    {
        Ok(granted) => granted,
        Err(e) => {
            let _ = client.close(&opened).await;
            return Ok(no_license(&e));
        }
    };
    tracing::info!(
        server = client.server(),
        session_id,
        license_id = granted.license_id,
        product = %granted.product,
        major_version = granted.major_version,
        "licensed"
    );

    let stop = signals::stop_requested()?;
    let mut child = match Command::new(&args.command[0])
        .args(&args.command[1..])
        .env("LICENSE_SERVER_SESSION_ID", session_id.to_string())
        .env("LICENSE_SERVER_LICENSE_ID", granted.license_id.to_string())
        .env("LICENSE_SERVER_URL", format!("http://{}", client.server()))
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            finish(&client, &opened, granted.license_id).await;
            anyhow::bail!("cannot run {:?}: {e}", args.command[0]);
        }
    };

    let heartbeats = {
        let client = client.clone();
        let every = Duration::from_secs(opened.heartbeat_interval_s.max(1));
        let session = opened.clone();
        tokio::spawn(async move { send_heartbeats(client, session, every).await })
    };
    let code = tokio::select! {
        status = child.wait() => exit_code(status?),
        signal = stop => {
            eprintln!("license-server client: {signal}; stopping the command and releasing the license");
            let _ = child.start_kill();
            let _ = child.wait().await;
            if signal == "interrupted" { 130 } else { 143 }
        }
    };
    heartbeats.abort();
    finish(&client, &opened, granted.license_id).await;
    Ok(ExitCode::from(code))
}

fn no_license(error: &ClientError) -> ExitCode {
    eprintln!("license-server client: no license: {error}");
    ExitCode::from(NO_LICENSE)
}

/// Releases and closes; a failure is reported but does not change the exit status (the server
/// releases the license anyway once the heartbeats stop).
async fn finish(client: &LicenseClient, session: &SessionOpened, license_id: u64) {
    let released = client.release(session, license_id).await;
    let closed = client.close(session).await;
    if let Err(e) = released.map(drop).and(closed.map(drop)) {
        eprintln!(
            "license-server client: could not release the license ({e}); the server will release it when the session times out"
        );
    }
}

async fn send_heartbeats(client: LicenseClient, session: SessionOpened, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    let mut warned = false;
    loop {
        interval.tick().await;
        match client.heartbeat(&session).await {
            Ok(()) => warned = false,
            Err(e) if e.code() == Some(ErrorCode::SessionEnded) => {
                eprintln!(
                    "license-server client: the server dropped this session ({e}); the command runs on without a license"
                );
                return;
            }
            Err(e) => {
                if !warned {
                    eprintln!("license-server client: heartbeat failed, retrying: {e}");
                    warned = true;
                }
            }
        }
    }
}

/// The command's exit status; killed by a signal = 128 + signal, as shells report it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return u8::try_from(128 + signal).unwrap_or(1);
    }
    1
}
