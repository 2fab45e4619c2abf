//! The core's top-level modules form no cycle, and use only what `src/lib.rs`'s module table lets
//! them use. The table lists the modules bottom-up; a module may use those above it. This reads
//! the sources (their code: comments and test modules aside) for `crate::module` and
//! `crate::{module, …}` paths, so a use that would close a cycle fails here, named, before it
//! can spread.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The module table: each module, in order, with what it may use.
fn table() -> Vec<(String, BTreeSet<String>)> {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.strip_prefix("//! |")?.split('|').map(str::trim).collect();
            let name = cells.first()?.strip_prefix("[`")?.strip_suffix("`]")?;
            let uses = cells.get(2)?.split(',').map(str::trim).filter(|u| !u.is_empty() && *u != "—");
            Some((name.to_owned(), uses.map(str::to_owned).collect()))
        })
        .collect()
}

/// The top-level modules declared in `lib.rs`.
fn declared() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod ")))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect()
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The code of a source file: its comments and its test module left out (tests may reach
/// anywhere), as are files that hold only tests.
fn code(path: &Path) -> String {
    if path.file_name().unwrap().to_string_lossy().ends_with("tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The top-level modules `code` names through `crate::`.
fn used(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                group.split(',').map(|p| p.trim().split("::").next().unwrap_or("")).collect()
            }
            None => vec![rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("")],
        };
        found.extend(names.into_iter().filter(|n| modules.contains(*n)).map(str::to_owned));
    }
    found
}

/// Each top-level module's uses of the others.
fn graph(modules: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    modules
        .iter()
        .map(|m| {
            let (dir, file) = (Path::new(SRC).join(m), Path::new(SRC).join(format!("{m}.rs")));
            let mut files = Vec::new();
            rust_files(if dir.is_dir() { &dir } else { &file }, &mut files);
            let mut uses: BTreeSet<String> = files.iter().flat_map(|f| used(&code(f), modules)).collect();
            uses.remove(m);
            (m.clone(), uses)
        })
        .collect()
}

/// A cycle through `start`, if there is one: the modules along it.
fn cycle_through(start: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        start: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &graph[at] {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, graph, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(start, start, graph, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_modules_form_no_cycle() {
    let modules = declared();
    let graph = graph(&modules);
    let cycles: Vec<String> =
        modules.iter().filter_map(|m| cycle_through(m, &graph)).map(|path| path.join(" → ")).collect();
    assert!(cycles.is_empty(), "the core's modules use each other in a cycle: {cycles:#?}");
}

#[test]
fn every_module_uses_only_what_the_table_above_it_allows() {
    let (table, modules) = (table(), declared());
    let listed: Vec<&str> = table.iter().map(|(m, _)| m.as_str()).collect();
    let unlisted: Vec<&String> = modules.iter().filter(|m| !listed.contains(&m.as_str())).collect();
    assert!(unlisted.is_empty(), "modules missing from lib.rs's module table: {unlisted:?}");
    let graph = graph(&modules);
    let mut problems = Vec::new();
    for (row, (module, allowed)) in table.iter().enumerate() {
        let above: BTreeSet<&str> = listed[..row].iter().copied().collect();
        for may in allowed {
            if !above.contains(may.as_str()) {
                problems.push(format!("the table lets `{module}` use `{may}`, which is not above it"));
            }
        }
        for uses in graph.get(module).into_iter().flatten() {
            if !allowed.contains(uses) {
                problems.push(format!("`{module}` uses `{uses}`, which the table does not allow it"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The reader finds what it must: a use in a group, a path, and not one in a comment.
#[test]
fn uses_are_read_from_code_only() {
    let modules: BTreeSet<String> = ["engine", "money", "ledger"].map(str::to_owned).into();
    let source = "use crate::{engine::Record, money::pricing::Usd};\nfn f() { crate::ledger::x() }";
    assert_eq!(used(source, &modules), modules);
    let commented = source.lines().map(|l| format!("// {l}")).collect::<Vec<_>>().join("\n");
    let file = std::env::temp_dir().join(format!("modules-{}.rs", std::process::id()));
    std::fs::write(&file, commented).unwrap();
    assert!(used(&code(&file), &modules).is_empty());
    std::fs::remove_file(file).unwrap();
}
