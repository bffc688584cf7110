//! `license-server generate-manual --out-dir DIR`: man pages and shell completions generated from
//! the command line's own definition, so they never disagree with `--help`. `make deb` puts them
//! into the Debian package: `man/license-server.1` and one page per subcommand
//! (`license-server-serve.1`, `license-server-license-install.1`, ...), and
//! `completions/license-server.{bash,zsh,fish}`.

use std::{fs, io::Write, path::Path};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn generate(out_dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let man = out_dir.join("man");
    let completions = out_dir.join("completions");
    for dir in [&man, &completions] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut command = Cli::command();
    command.build();
    let mut pages = 0;
    write_pages(&command, "license-server", &man, &mut pages)?;
    for (shell, file) in [
        (Shell::Bash, "license-server.bash"),
        (Shell::Zsh, "_license-server"),
        (Shell::Fish, "license-server.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut command, "license-server", &mut text);
        fs::write(completions.join(file), text)?;
    }
    writeln!(
        out,
        "{pages} man pages in {}, completions for bash, zsh and fish in {}",
        man.display(),
        completions.display()
    )?;
    Ok(())
}

/// The page of `command` (named `name`), then its subcommands' pages, recursively.
fn write_pages(
    command: &clap::Command,
    name: &str,
    dir: &Path,
    pages: &mut usize,
) -> anyhow::Result<()> {
    if command.is_hide_set() {
        return Ok(());
    }
    let page = command.clone().name(name.to_owned());
    let mut text = Vec::new();
    clap_mangen::Man::new(page).render(&mut text)?;
    fs::write(dir.join(format!("{name}.1")), text)?;
    *pages += 1;
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" {
            write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, pages)?;
        }
    }
    Ok(())
}
