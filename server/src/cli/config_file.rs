//! `serve --config FILE`: the options of `serve` from a TOML file, as a package installs it under
//! `/etc/license-server/` and a systemd unit names it.
//!
//! Each key is an option's long name without the dashes (`api-port = 1401`; `api_port` is read
//! the same), with its value as the option takes it: a string or a number, `true` for a switch, an
//! array for an option that may be repeated (`vendor-public-key = ["a.pub", "b.pub"]`). A key
//! that is no option of `serve` is an error that names it: a misspelt key would otherwise be a
//! setting silently not applied.
//!
//! Precedence: the command line, then the environment (`LICENSE_SERVER_*`), then the file, then
//! the defaults. The file's values are handed to the same parser as the command line's (as
//! `--key=value`, for the options the command line and the environment left unset), so every
//! value is checked by the same rules and refused with the same words, plus the file's name.

use std::{ffi::OsString, path::Path};

use clap::{ArgAction, CommandFactory, FromArgMatches, parser::ValueSource};

use super::args::Cli;

/// The largest configuration file read: a real one is a few hundred bytes.
const MAX_BYTES: u64 = 1024 * 1024;

/// The command line of this process, with `serve --config FILE` applied; a usage error (exit
/// status 2) with the reason, or help and version as clap prints them.
pub fn parse() -> Cli {
    parse_from(std::env::args_os().collect()).unwrap_or_else(|e| e.exit())
}

/// [`parse`] of `args` (the program's name first).
pub fn parse_from(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let command = Cli::command();
    let matches = command.clone().try_get_matches_from(&args)?;
    let Some(("serve", serve)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches);
    };
    let Some(file) = serve.get_one::<std::path::PathBuf>("config") else {
        return Cli::from_arg_matches(&matches);
    };
    let table = read(file).map_err(|why| usage(&format!("{}: {why}", file.display())))?;
    let serve_command = command
        .find_subcommand("serve")
        .cloned()
        .ok_or_else(|| usage("no serve command"))?;
    // The options of `serve`, and the global ones (`log-format`), which `serve` takes too.
    let options: Vec<clap::Arg> = serve_command
        .get_arguments()
        .chain(command.get_arguments().filter(|a| a.is_global_set()))
        .cloned()
        .collect();
    let mut extra = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = options
            .iter()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .ok_or_else(|| {
                let keys: Vec<&str> = options
                    .iter()
                    .filter_map(|a| a.get_long())
                    .filter(|l| !matches!(*l, "config" | "help" | "version"))
                    .collect();
                usage(&format!(
                    "{}: unknown key `{key}`; the keys are the options of `serve` without the \
                     dashes: {}",
                    file.display(),
                    keys.join(", ")
                ))
            })?;
        if !seen.insert(long.clone()) {
            return Err(usage(&format!(
                "{}: `{key}` is given twice (as {long} and with underscores)",
                file.display()
            )));
        }
        // The command line and the environment win over the file.
        // Global options are propagated into `serve`'s matches.
        if matches!(
            serve.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let takes_many = matches!(arg.get_action(), ArgAction::Append);
        let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) if takes_many => items.iter().collect(),
            toml::Value::Array(_) => {
                return Err(usage(&format!(
                    "{}: `{key}` takes one value, not a list",
                    file.display()
                )));
            }
            single => vec![single],
        };
        for value in values {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(on) if is_switch => {
                    if *on {
                        extra.push(OsString::from(format!("--{long}")));
                    }
                    continue;
                }
                toml::Value::Boolean(on) => on.to_string(),
                _ => {
                    return Err(usage(&format!(
                        "{}: `{key}` must be a string or a whole number{}",
                        file.display(),
                        if takes_many {
                            " (or a list of them)"
                        } else {
                            ""
                        }
                    )));
                }
            };
            if is_switch {
                return Err(usage(&format!(
                    "{}: `{key}` is a switch: give true or false",
                    file.display()
                )));
            }
            extra.push(OsString::from(format!("--{long}={text}")));
        }
    }
    let mut args = args;
    args.extend(extra);
    let from_file: Vec<String> = seen.into_iter().collect();
    let matches = command.try_get_matches_from(&args).map_err(|e| {
        let named = e
            .get(clap::error::ContextKind::InvalidArg)
            .map(|arg| arg.to_string())
            .unwrap_or_default();
        let in_file = from_file
            .iter()
            .any(|long| named.starts_with(&format!("--{long} ")) || named == format!("--{long}"));
        if in_file {
            usage(&format!(
                "{} (set in {})",
                e.render()
                    .to_string()
                    .trim_start_matches("error: ")
                    .trim_end(),
                file.display()
            ))
        } else {
            e
        }
    })?;
    Cli::from_arg_matches(&matches)
}

/// The file's table of keys, or why it cannot be had.
fn read(file: &Path) -> Result<toml::Table, String> {
    let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "{} bytes; a configuration file has at most {MAX_BYTES}",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("not valid TOML: {}", e.to_string().trim_end()))
}

fn usage(message: &str) -> clap::Error {
    Cli::command().error(clap::error::ErrorKind::ValueValidation, message)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::cli::args::{Command, ServeArgs};

    fn parse(file_text: &str, args: &[&str]) -> Result<Cli, String> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(file_text.as_bytes()).unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let mut argv: Vec<OsString> = ["license-server", "serve", "--config", &path]
            .iter()
            .map(OsString::from)
            .collect();
        argv.extend(args.iter().map(OsString::from));
        parse_from(argv).map_err(|e| e.render().to_string())
    }

    fn serve(file_text: &str, args: &[&str]) -> Result<ServeArgs, String> {
        match parse(file_text, args)?.command {
            Command::Serve(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_global_option_comes_from_the_file_too() {
        assert!(parse("log-format = \"json\"\n", &[]).unwrap().log.json());
        let cli = parse("log-format = \"json\"\n", &["--log-format", "text"]).unwrap();
        assert!(!cli.log.json(), "the command line wins");
        assert!(!parse("", &[]).unwrap().log.json());
    }

    #[test]
    fn the_file_sets_options_and_the_command_line_wins() {
        let text = "port = 2400\napi_port = 2500\nvendor-public-key = [\"a.pub\", \"b.pub\"]\n\
                    session-timeout = 60\nledger-archive-after = \"30d\"\nlog-format = \"json\"\n";
        let args = serve(text, &[]).unwrap();
        assert_eq!((args.port, args.api_port), (2400, Some(2500)));
        assert_eq!(args.session_timeout, 60);
        assert_eq!(
            args.trust.vendor_public_keys,
            vec![std::path::PathBuf::from("a.pub"), "b.pub".into()]
        );
        assert_eq!(
            args.ledger_archive_after.0,
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        let args = serve(text, &["--port", "3400"]).unwrap();
        assert_eq!((args.port, args.api_port), (3400, Some(2500)));
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_is_refused_with_its_name() {
        let err = serve("port = 2400\nsesion-timeout = 60\n", &[]).unwrap_err();
        assert!(err.contains("unknown key `sesion-timeout`"), "{err}");
        assert!(
            err.contains("session-timeout"),
            "the keys are listed: {err}"
        );
        let err = serve("port = 70000\n", &[]).unwrap_err();
        assert!(err.contains("--port") && err.contains("(set in "), "{err}");
        let err = serve("port = [1, 2]\n", &[]).unwrap_err();
        assert!(err.contains("takes one value"), "{err}");
        let err = serve("port = 1.5\n", &[]).unwrap_err();
        assert!(err.contains("whole number"), "{err}");
        let err = serve("port = \n", &[]).unwrap_err();
        assert!(err.contains("not valid TOML"), "{err}");
        let err = serve("config = \"other.toml\"\n", &[]).unwrap_err();
        assert!(err.contains("unknown key `config`"), "{err}");
    }
}
