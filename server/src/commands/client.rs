//! `license-server client run`: a program under a license, and never without one (see
//! [`super::license_keeper`]).

use std::{process::ExitCode, time::Duration};

use models::{OpenSession, RequestLicense};
use tokio::{
    process::{Child, Command},
    sync::watch,
};

use super::license_keeper::{Held, Job, Keeper};
use crate::{
    cli::ClientRunArgs,
    client::{ClientError, LicenseClient, new_request_id},
    licensing::identity::hostname,
    sys::signals,
};

/// sysexits' EX_TEMPFAIL: no license now, try again later.
pub const NO_LICENSE: u8 = 75;

pub async fn run(args: ClientRunArgs) -> anyhow::Result<ExitCode> {
    let ca = match &args.tls_ca {
        Some(file) => Some(
            std::fs::read(file)
                .map_err(|e| anyhow::anyhow!("cannot read --tls-ca {}: {e}", file.display()))?,
        ),
        None => None,
    };
    let mut client = LicenseClient::with_ca(args.servers.clone(), ca.as_deref())?;
    let command_line = args
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let job = Job {
        open: OpenSession {
            host: hostname(),
            message: args.message.clone().unwrap_or(command_line),
            pool: args.pool.clone(),
            user: None,
        },
        request: RequestLicense {
            request_id: new_request_id(),
            product_id: args.product_id,
            major_version: args.major_version,
            request_type: args.license_type.into(),
            wait_s: Some(args.wait),
        },
    };
    // Listening from the start: a SIGTERM while the license is being granted (or waited for)
    // must not kill the client with the session still open.
    let stop = signals::stop_requested()?;
    tokio::pin!(stop);
    let opened = match client.open_session(&job.open).await {
        Ok(opened) => opened,
        Err(e) => return Ok(no_license(&e)),
    };
    let session_id = opened.session_id;
    let granted = tokio::select! {
        granted = client.request_license(&opened, &job.request) => match granted {
            Ok(granted) => granted,
            Err(e) => {
                let _ = client.close(&opened).await;
                return Ok(no_license(&e));
            }
        },
        signal = &mut stop => {
            eprintln!("license-server client: {signal} before the command started; closing the session");
            let _ = client.close(&opened).await;
            return Ok(ExitCode::from(stopped_by(signal)));
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

    let held = Held {
        client: client.clone(),
        session: opened,
        license_id: granted.license_id,
    };
    let mut child = match Command::new(&args.command[0])
        .args(&args.command[1..])
        .env("LICENSE_SERVER_SESSION_ID", session_id.to_string())
        .env("LICENSE_SERVER_LICENSE_ID", granted.license_id.to_string())
        .env(
            "LICENSE_SERVER_URL",
            crate::client::url(client.server(), ""),
        )
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            finish(&held).await;
            anyhow::bail!("cannot run {:?}: {e}", args.command[0]);
        }
    };

    let (current, now_held) = watch::channel(Some(held));
    let mut keeper = tokio::spawn(
        Keeper {
            job,
            grace: args.grace.map(Duration::from_secs),
            policy: args.on_license_loss,
            held: current,
        }
        .run(),
    );
    let kill_after = Duration::from_secs(args.kill_after);
    let code = tokio::select! {
        status = child.wait() => exit_code(status?),
        signal = &mut stop => {
            eprintln!("license-server client: {signal}; stopping the command and releasing the license");
            stop_command(&mut child, kill_after).await;
            stopped_by(signal)
        }
        lost = &mut keeper => {
            let reason = lost.unwrap_or_else(|e| format!("the license keeper failed: {e}"));
            eprintln!("license-server client: stopping the command: {reason}");
            stop_command(&mut child, kill_after).await;
            eprintln!("license-server client: the command was stopped because it has no license");
            NO_LICENSE
        }
    };
    keeper.abort();
    let held = now_held.borrow().clone();
    if let Some(held) = held {
        finish(&held).await;
    }
    Ok(ExitCode::from(code))
}

/// The exit code after a stop signal, as a shell reports a process it ended: 128 + the signal.
fn stopped_by(signal: &str) -> u8 {
    if signal == "interrupted" { 130 } else { 143 }
}

fn no_license(error: &ClientError) -> ExitCode {
    eprintln!("license-server client: no license: {error}");
    ExitCode::from(NO_LICENSE)
}

/// SIGTERM, then SIGKILL if the command is still there after `kill_after`.
async fn stop_command(child: &mut Child, kill_after: Duration) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
        && rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
        && tokio::time::timeout(kill_after, child.wait()).await.is_ok()
    {
        return;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Releases and closes; a failure is reported but does not change the exit status (the server
/// releases the license anyway once the heartbeats stop).
async fn finish(held: &Held) {
    let released = held.client.release(&held.session, held.license_id).await;
    let closed = held.client.close(&held.session).await;
    if let Err(e) = released.map(drop).and(closed.map(drop)) {
        eprintln!(
            "license-server client: could not release the license ({e}); the server will release it when the session times out"
        );
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
