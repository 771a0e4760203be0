//! The shape of the code: inside each crate, modules import each other without cycles (each
//! crate reads in layers), and no file of shipped code grows past 600 lines (the test kits,
//! `tests/src` and `pgtest/src`, are test code).
//!
//! `cargo test -p rampart-tests --test module_graph -- --nocapture` prints every crate's module
//! graph (who imports whom) as it checks it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest non-test source file, in lines (those before its inline test module).
const MAX_LINES: usize = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The folder of every workspace member.
fn members() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    members
        .iter()
        .map(|member| workspace().join(member.as_str().unwrap()))
        .collect()
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Whether `path` (relative to a crate's `src`) holds only tests.
fn is_test_file(relative: &Path) -> bool {
    relative.file_name().is_some_and(|name| name == "tests.rs")
        || relative.components().any(|part| part.as_os_str() == "tests")
}

/// The code of a file without its inline test module (a top-level `#[cfg(test)]` followed by
/// `mod tests {`, which the codebase keeps at the end of a file): what ships. Any other
/// `#[cfg(test)]` item (a field, `mod tests;`) counts as shipped code.
fn shipped(text: &str) -> &str {
    const INLINE_TESTS: &str = "\n#[cfg(test)]\nmod tests {";
    text.find(INLINE_TESTS).map_or(text, |at| &text[..at])
}

/// A module's path inside its crate: `src/a/b.rs` and `src/a/b/mod.rs` are `["a", "b"]`;
/// `lib.rs`, `main.rs` and `src/bin/*.rs` are the crate root (`[]`).
fn module_of(relative: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|first| first == "bin") {
        return None;
    }
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    Some(parts)
}

/// The first path segment of every module path `text` names through `crate::` (with `use`
/// groups opened: `crate::{a, b::c}` names `a` and `b`), and what `super::` names from a
/// module at `module`, resolved to absolute module paths.
fn imports(text: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            // `$crate::` in a macro, or `my_crate::`: not this crate's path.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            for path in paths_at(rest) {
                let mut full = base.clone();
                full.extend(path);
                found.insert(full);
            }
        }
    }
    found
}

fn parent(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// The module paths at the start of `text` (after `crate::`): one path, or each member of a
/// `{…}` group, each as its segments up to the first item that is not a lower-case module name.
fn paths_at(text: &str) -> Vec<Vec<String>> {
    if let Some(group) = text.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        return group[..end]
            .split(',')
            .map(|member| segments(member.trim()))
            .filter(|path| !path.is_empty())
            .collect();
    }
    vec![segments(text)]
}

fn segments(text: &str) -> Vec<String> {
    let mut path = Vec::new();
    let mut rest = text;
    loop {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // Types and constants end the module path (a lower-case function name may stay: only
        // paths that are modules of the crate count).
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            break;
        }
        rest = &rest[name.len()..];
        path.push(name);
        match rest.strip_prefix("::") {
            Some(more) if !more.starts_with('{') => rest = more,
            _ => break,
        }
    }
    path
}

/// One crate's module graph at one level: the children of `parent`, and which of them imports
/// which (an import of a deeper path counts as one of the child it lies in).
type Graph = BTreeMap<String, BTreeSet<String>>;

fn graph_under(files: &[(Vec<String>, String)], parent: &[String], known: &BTreeSet<Vec<String>>) -> Graph {
    let child_of = |path: &[String]| -> Option<String> {
        (path.len() > parent.len() && path.starts_with(parent)).then(|| path[parent.len()].clone())
    };
    let mut graph = Graph::new();
    for (module, text) in files {
        let Some(from) = child_of(module) else { continue };
        let edges = graph.entry(from.clone()).or_default();
        for import in imports(text, module) {
            // Only paths that lead to a module of this crate (not `crate::SomeType`).
            let Some(to) = child_of(&import) else { continue };
            let mut prefix = parent.to_vec();
            prefix.push(to.clone());
            if to != from && known.contains(&prefix) {
                edges.insert(to);
            }
        }
    }
    graph
}

/// The cycles of `graph`: its strongly connected components of more than one module.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn finish(node: &str, graph: &Graph, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
        if !seen.insert(node.to_owned()) {
            return;
        }
        for next in graph.get(node).into_iter().flatten() {
            finish(next, graph, seen, order);
        }
        order.push(node.to_owned());
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for node in graph.keys() {
        finish(node, graph, &mut seen, &mut order);
    }
    let mut reversed = Graph::new();
    for (from, tos) in graph {
        for to in tos {
            reversed.entry(to.clone()).or_default().insert(from.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut found = Vec::new();
    for node in order.iter().rev() {
        if assigned.contains(node) {
            continue;
        }
        let mut component = Vec::new();
        let mut todo = vec![node.clone()];
        while let Some(next) = todo.pop() {
            if !assigned.insert(next.clone()) {
                continue;
            }
            component.push(next.clone());
            todo.extend(reversed.get(&next).into_iter().flatten().cloned());
        }
        if component.len() > 1 {
            component.sort();
            found.push(component);
        }
    }
    found
}

/// Every module of the crate at `dir` with its shipped code.
fn crate_modules(dir: &Path) -> Vec<(Vec<String>, String)> {
    let src = dir.join("src");
    if !src.is_dir() {
        return Vec::new();
    }
    rust_files(&src)
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&src).unwrap().to_owned();
            if is_test_file(&relative) {
                return None;
            }
            let module = module_of(&relative)?;
            let text = std::fs::read_to_string(&path).unwrap();
            Some((module, shipped(&text).to_owned()))
        })
        .collect()
}

#[test]
fn no_crate_has_a_cycle_among_its_modules() {
    let mut problems = Vec::new();
    for dir in members() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let files = crate_modules(&dir);
        let known: BTreeSet<Vec<String>> = files
            .iter()
            .flat_map(|(module, _)| (1..=module.len()).map(|n| module[..n].to_vec()))
            .collect();
        // The crate root's children, then the children of every folder module.
        let mut parents: BTreeSet<Vec<String>> = BTreeSet::from([Vec::new()]);
        parents.extend(
            known
                .iter()
                .filter(|m| known.iter().any(|k| k.len() > m.len() && k.starts_with(m)))
                .cloned(),
        );
        for parent in parents {
            let graph = graph_under(&files, &parent, &known);
            let place = if parent.is_empty() {
                name.clone()
            } else {
                format!("{name}::{}", parent.join("::"))
            };
            println!("{place}:");
            for (from, tos) in &graph {
                if !tos.is_empty() {
                    println!("  {from} -> {}", tos.iter().cloned().collect::<Vec<_>>().join(", "));
                }
            }
            for cycle in cycles(&graph) {
                let edges: Vec<String> = cycle
                    .iter()
                    .flat_map(|from| {
                        graph[from]
                            .iter()
                            .filter(|to| cycle.contains(to))
                            .map(move |to| format!("{from} -> {to}"))
                    })
                    .collect();
                problems.push(format!(
                    "{place}: cycle among {}: {}",
                    cycle.join(", "),
                    edges.join("; ")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "module import cycles:\n{}", problems.join("\n"));
}

#[test]
fn no_file_of_shipped_code_is_longer_than_600_lines() {
    let mut long = Vec::new();
    let test_kits = [workspace().join("tests"), workspace().join("pgtest")];
    for dir in members().into_iter().filter(|dir| !test_kits.contains(dir)) {
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        for path in rust_files(&src) {
            if is_test_file(path.strip_prefix(&src).unwrap()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = shipped(&text).lines().count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{} ({lines} lines)",
                    path.strip_prefix(workspace()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines of non-test code:\n{}",
        long.join("\n")
    );
}

#[test]
fn only_the_inline_test_module_is_left_out() {
    let text = "use a;\n#[cfg(test)]\nmod tests;\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n";
    let kept = shipped(text);
    assert!(kept.contains("fn f()"), "code after `mod tests;` ships: {kept}");
    assert!(!kept.contains("crate::b"), "{kept}");
}

#[test]
fn the_checker_finds_a_cycle_and_reads_use_groups() {
    let files = vec![
        (vec!["a".to_owned()], "use crate::{b, c::Thing};\n".to_owned()),
        (vec!["b".to_owned()], "use crate::c::deeper::f;\n".to_owned()),
        (vec!["c".to_owned()], "fn g() { crate::a::h() }\n".to_owned()),
        (
            vec!["c".to_owned(), "deeper".to_owned()],
            "use super::super::a;\n".to_owned(),
        ),
        (
            vec!["d".to_owned()],
            "use crate::Error; use my_crate::a::x;\n".to_owned(),
        ),
    ];
    let known = files.iter().map(|(m, _)| m.clone()).collect();
    let graph = graph_under(&files, &[], &known);
    assert_eq!(graph["a"], BTreeSet::from(["b".to_owned(), "c".to_owned()]));
    assert_eq!(graph["b"], BTreeSet::from(["c".to_owned()]));
    assert!(
        graph["d"].is_empty(),
        "a type at the root and another crate's path are no modules"
    );
    assert_eq!(
        cycles(&graph),
        vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
    );
    let inner = graph_under(&files, &["c".to_owned()], &known);
    assert!(inner["deeper"].is_empty(), "super::super leaves c");
}

/// The crates `cargo tree` lists for the CLI with `features`.
fn cli_crates(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(workspace())
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "rampart-admin-cli",
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}"]);
    for feature in features {
        command.args(["--features", feature]);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_desk_cli_carries_no_server_unless_built_for_dev_mode() {
    let plain = cli_crates(&[]);
    assert!(plain.contains("rampart-api"), "{plain:?}");
    for server in ["rampart-gateway", "rampart-provisioner", "rampart-serve", "axum"] {
        assert!(!plain.contains(server), "{server} in the plain CLI: {plain:?}");
    }
    let dev = cli_crates(&["dev"]);
    assert!(
        dev.contains("rampart-gateway") && dev.contains("rampart-provisioner"),
        "{dev:?}"
    );
}
