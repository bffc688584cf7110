//! Ctrl-C and SIGTERM, for the server and for `client run`; SIGHUP, for reloading certificates.

/// Resolves with "interrupted" (Ctrl-C, SIGINT) or "terminated" (SIGTERM, as service managers and
/// `docker stop` send it). The handlers are registered when this is called, not when the future
/// is first polled: a signal that arrives a moment after the caller announced itself (the
/// server's "ready" line, the client's command starting) must be handled, not kill the process.
pub fn stop_requested() -> std::io::Result<impl Future<Output = &'static str>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => "interrupted",
                _ = terminate.recv() => "terminated",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "interrupted",
                Err(_) => std::future::pending().await,
            }
        })
    }
}

/// [`stop_requested`] for a service: the signal is logged when it comes.
pub fn stop_logged() -> std::io::Result<impl Future<Output = ()>> {
    let stop = stop_requested()?;
    Ok(async move {
        let signal = stop.await;
        tracing::info!("{signal}");
    })
}

/// SIGHUP, as `systemctl reload` and `kill -HUP` send it: "load your files again". `None` where
/// there is no such signal (or it cannot be listened to); then only a change of the files tells.
#[cfg(unix)]
pub type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub type Hangups = Option<()>;

/// Starts listening for SIGHUP. Without a listener, SIGHUP would end the process.
pub fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Resolves at the next SIGHUP; never without a listener.
pub async fn next(hangups: &mut Hangups) {
    #[cfg(unix)]
    if let Some(signal) = hangups
        && signal.recv().await.is_some()
    {
        return;
    }
    #[cfg(not(unix))]
    let _ = hangups;
    std::future::pending::<()>().await;
}
