//! The house rules of `server/src` (and `app/src`), as `lib.rs` states them: rooms import one way,
//! the domain knows nothing of HTTP, SQL stays in the store, a module never imports its parent,
//! no source file is over 600 lines. Read from the source text, so a change that breaks a rule
//! fails here with the file and line that broke it.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

/// What each room may import: only rooms of a lower rank. Two rooms of one rank never import each
/// other, so the rooms cannot form a circle.
const RANKS: &[(&str, u32)] = &[
    ("sys", 0),
    ("store", 1),
    ("client", 1),
    ("ledger", 2),
    ("licensing", 3),
    ("failover", 3),
    ("auth", 3),
    ("engine", 4),
    ("usage", 4),
    ("app", 5),
    ("http", 5),
    ("cli", 5),
    ("anchoring", 6),
    ("protocol", 7),
    ("status", 7),
    ("admin", 7),
    ("vendor", 7),
    ("peers", 7),
    ("commands", 7),
    ("openapi", 8),
    ("fuzzing", 8),
    ("ports", 9),
    ("serve", 10),
];

/// The domain and what is under it: no HTTP here.
const NO_HTTP: &[&str] = &[
    "engine",
    "usage",
    "licensing",
    "auth",
    "ledger",
    "store",
    "sys",
];

struct Source {
    path: PathBuf,
    /// Path below `src/`, `/`-separated.
    relative: String,
    /// The lines before the file's test module, comments blanked (line numbers stay).
    lines: Vec<String>,
    /// Lines of the whole file.
    total: usize,
}

fn sources(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let lines = code
                    .lines()
                    .map(|l| {
                        if l.trim_start().starts_with("//") {
                            String::new()
                        } else {
                            l.to_owned()
                        }
                    })
                    .collect();
                let relative = path
                    .strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push(Source {
                    relative,
                    lines,
                    total: text.lines().count(),
                    path,
                });
            }
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    files
}

fn server_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The room of a file: its folder, or its name for a file at the top.
fn room(relative: &str) -> &str {
    relative
        .split('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".rs")
}

/// The first names of the paths below `prefix` (`crate::`, `super::`) in `code`, with the line
/// each stands on: `crate::{a, b::c}` gives `a` and `b`. Use trees may span lines.
fn names_below(code: &str, prefix: &str) -> Vec<(usize, String)> {
    let mut names = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        let before = &code[..i];
        if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let line = before.matches('\n').count() + 1;
        let rest = &code[i + prefix.len()..];
        let mut items = Vec::new();
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            items.push(item);
        } else {
            items.push(rest.to_owned());
        }
        for item in items {
            let name: String = item
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push((line, name));
            }
        }
    }
    names
}

#[test]
fn rooms_import_only_rooms_below_them() {
    let ranks: BTreeMap<&str, u32> = RANKS.iter().copied().collect();
    let mut wrong = Vec::new();
    for file in sources(&server_src()) {
        let from = room(&file.relative);
        // The crate's root declares the rooms, the binaries' mains use it from outside; a test
        // module may reach anywhere.
        if matches!(from, "lib" | "main" | "main_vendor") || file.relative.ends_with("/tests.rs") {
            continue;
        }
        let rank = *ranks
            .get(from)
            .unwrap_or_else(|| panic!("{}: a room the layout does not know", file.relative));
        for (line, to) in names_below(&file.lines.join("\n"), "crate::") {
            if to == from {
                continue;
            }
            match ranks.get(to.as_str()) {
                Some(&r) if r < rank => {}
                _ => wrong.push(format!("{}:{line}: {from} imports {to}", file.relative)),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layout:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_domain_knows_nothing_of_http_and_sql_stays_in_the_store() {
    let mut wrong = Vec::new();
    for file in sources(&server_src()) {
        let room = room(&file.relative);
        for (n, line) in file.lines.iter().enumerate() {
            let at = format!("{}:{}", file.relative, n + 1);
            if NO_HTTP.contains(&room) && (line.contains("axum") || line.contains("StatusCode")) {
                wrong.push(format!("{at}: HTTP in the domain"));
            }
            if room != "store" && line.contains("sqlx") {
                wrong.push(format!("{at}: SQL outside the store"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_module_imports_its_parent_and_no_file_is_over_600_lines() {
    let app_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/src");
    let mut wrong = Vec::new();
    for src in [server_src(), app_src] {
        for file in sources(&src) {
            let name = file.path.file_name().unwrap().to_string_lossy();
            // Test modules in their own files count separately.
            if name != "tests.rs" && file.total > 600 {
                wrong.push(format!("{}: {} lines", file.relative, file.total));
            }
            // A module in a folder may name its siblings through `super::`, nothing of its
            // parent's own.
            let dir = file.path.parent().unwrap();
            if name == "mod.rs" || name == "tests.rs" || !dir.join("mod.rs").exists() {
                continue;
            }
            for (line, sibling) in names_below(&file.lines.join("\n"), "super::") {
                let exists = dir.join(format!("{sibling}.rs")).exists()
                    || dir.join(&sibling).join("mod.rs").exists();
                if !exists {
                    wrong.push(format!(
                        "{}:{line}: imports super::{sibling}, which is not a sibling module",
                        file.relative
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
