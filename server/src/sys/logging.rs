//! Structured logs on stderr (stdout stays free for what subcommands print), filtered by
//! `RUST_LOG`, as text or one JSON object per line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Without `RUST_LOG`: `info`, but for the Raft library's own lines, which repeat every half
/// second while a member of a failover network is down (the server says once what changed).
pub const DEFAULT_FILTER: &str = "info,openraft=off";

/// `json`: one JSON object per line, for log shippers; otherwise lines for people.
pub fn init(json: bool) {
    let (filter, bad_filter) = match std::env::var("RUST_LOG") {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (
                EnvFilter::new(DEFAULT_FILTER),
                Some(format!("{spec:?}: {e}")),
            ),
        },
        Err(_) => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into a log file or a pipe.
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    if let Some(bad) = bad_filter {
        tracing::warn!("ignoring invalid RUST_LOG {bad}; logging with {DEFAULT_FILTER}");
    }
}

/// Reports a command's failure and gives its exit status. JSON logs stay one JSON object per
/// line; people get a plain sentence.
pub fn fail(json: bool, error: &anyhow::Error) -> std::process::ExitCode {
    if json {
        tracing::error!(error = format!("{error:#}"), "failed");
    } else {
        eprintln!("error: {error:#}");
    }
    std::process::ExitCode::FAILURE
}
