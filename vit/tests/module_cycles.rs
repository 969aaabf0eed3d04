//! No import circles among a crate's modules: each module may use only modules "below" it, so
//! that a reader can start at the leaves and never meet a module that needs one not read yet.
//!
//! The test reads each crate's `src/` files and builds a graph whose nodes are the crate's
//! top-level modules. A folder module (`src/kernels/` with `mod.rs`, or `src/plots.rs` beside
//! `src/plots/`) is one node with all its files: uses among its own submodules are its own
//! business. An edge `a -> b` is a path `crate::b...` (or `$crate::b...`, or an item of a
//! `crate::{b, ...}` group) anywhere in `a`'s code, comments and string literals left out. The
//! crate root (`lib.rs`, `main.rs`) is no node: it declares the modules, and a binary's modules
//! may name its items. `super::` paths are not followed (in a top-level file they mostly mean an
//! inline module's parent, which is the file itself). Test code (`#[cfg(test)]` items, inline or
//! a test module's own file) is left out: tests sit above what they test.
//!
//! It runs on `vit` and `trainer`. `web/` is not checked yet: its flat `src/` still has known
//! circles (issue 32) that a restructuring into feature folders removes; add it here then.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where one module uses another: the using file and line.
type Edges = BTreeMap<(String, String), (PathBuf, usize)>;

/// The crate's top-level modules (by name) and the files of each.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            out.entry(stem).or_default().extend(files);
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            out.entry(stem).or_default().push(path);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments and the contents of string and character literals blanked
/// (newlines kept, so line numbers still hold).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&b, i) {
            // A raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() {
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(b[j]));
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' && is_char_literal(&b, i) {
            // '"' and the like: skip to the closing quote (a lifetime has none nearby).
            let mut j = i + 1;
            if b.get(j) == Some(&'\\') {
                j += 1;
            }
            j += 1;
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// Whether the `'` at `i` opens a character literal rather than a lifetime or label.
fn is_char_literal(b: &[char], i: usize) -> bool {
    matches!(
        (b.get(i + 1), b.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

fn ident_at(b: &[char], mut i: usize) -> (String, usize) {
    let mut s = String::new();
    while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
        s.push(b[i]);
        i += 1;
    }
    (s, i)
}

fn skip_space(b: &[char], mut i: usize) -> usize {
    while i < b.len() && b[i].is_whitespace() {
        i += 1;
    }
    i
}

/// `code` with every `#[cfg(test)]` item blanked (up to its `;` or its block's closing brace),
/// and the names of the test modules that live in files of their own (`#[cfg(test)] mod x;`).
fn without_tests(code: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut b: Vec<char> = code.chars().collect();
    let attr: Vec<char> = ATTR.chars().collect();
    let mut files = Vec::new();
    let mut i = 0;
    while i + attr.len() <= b.len() {
        if b[i..i + attr.len()] != attr[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut k = i + attr.len();
        let mut depth = 0;
        while k < b.len() {
            match b[k] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ';' if depth == 0 => break,
                _ => {}
            }
            k += 1;
        }
        let item: String = b[start + attr.len()..k.min(b.len())].iter().collect();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let Some(m) = words.iter().position(|w| *w == "mod")
            && let Some(name) = words.get(m + 1)
            && !item.contains('{')
        {
            files.push(name.to_string());
        }
        let end = (k + 1).min(b.len());
        for c in &mut b[start..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = k + 1;
    }
    (b.into_iter().collect(), files)
}

/// The first path segment after each `crate::` in `code`, with its line (1-based).
fn crate_uses(code: &str) -> Vec<(String, usize)> {
    let b: Vec<char> = code.chars().collect();
    let line_of = |i: usize| b[..i].iter().filter(|&&c| c == '\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 7 <= b.len() {
        let at_word = i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if !(at_word && b[i..i + 7].iter().collect::<String>() == "crate::") {
            i += 1;
            continue;
        }
        let line = line_of(i);
        let j = skip_space(&b, i + 7);
        if b.get(j) == Some(&'{') {
            // A group: the first segment of each item at its top level.
            let mut depth = 0;
            let mut k = j;
            let mut expect_item = true;
            while k < b.len() {
                match b[k] {
                    '{' => {
                        depth += 1;
                        k += 1;
                        expect_item = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        k += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' => {
                        expect_item = depth == 1;
                        k += 1;
                    }
                    c if c.is_whitespace() => k += 1,
                    _ if expect_item => {
                        let (name, end) = ident_at(&b, k);
                        if !name.is_empty() {
                            out.push((name, line_of(k)));
                        }
                        expect_item = false;
                        k = end.max(k + 1);
                    }
                    _ => k += 1,
                }
            }
            i = k;
        } else {
            let (name, end) = ident_at(&b, j);
            if !name.is_empty() {
                out.push((name, line));
            }
            i = end.max(i + 7);
        }
    }
    out
}

/// Every use of one top-level module by another, with the first place it happens.
fn graph(src: &Path) -> (BTreeSet<String>, Edges) {
    let mods = modules(src);
    let nodes: BTreeSet<String> = mods.keys().cloned().collect();
    let mut edges = Edges::new();
    // Test modules in files of their own, by path: `#[cfg(test)] mod tests;` in
    // `src/kernels/mod.rs` is `src/kernels/tests.rs` (or `tests/mod.rs`).
    let mut test_files = BTreeSet::new();
    let mut code = BTreeMap::new();
    for file in mods.values().flatten() {
        let (text, tests) = without_tests(&code_only(&std::fs::read_to_string(file).unwrap()));
        let stem = file.file_stem().unwrap();
        let children = if stem == "mod" {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for t in tests {
            test_files.insert(children.join(format!("{t}.rs")));
            test_files.insert(children.join(t).join("mod.rs"));
        }
        code.insert(file.clone(), text);
    }
    for (from, files) in &mods {
        for file in files.iter().filter(|f| !test_files.contains(*f)) {
            for (to, line) in crate_uses(&code[file]) {
                if to != *from && nodes.contains(&to) {
                    edges
                        .entry((from.clone(), to))
                        .or_insert_with(|| (file.clone(), line));
                }
            }
        }
    }
    (nodes, edges)
}

/// One circle of the graph, as the nodes along it (the first repeated at the end), if any.
fn find_cycle(nodes: &BTreeSet<String>, edges: &Edges) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &str,
        edges: &Edges,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        for (_, to) in edges.keys().filter(|(from, _)| from == n) {
            match marks[to] {
                Mark::Open => {
                    let start = stack.iter().position(|s| s == to).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(to.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(to, edges, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks: BTreeMap<String, Mark> = nodes.iter().map(|n| (n.clone(), Mark::New)).collect();
    for n in nodes {
        if marks[n] == Mark::New
            && let Some(c) = visit(n, edges, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// Panics naming the circle, and where each of its uses is, when `src` has one.
fn assert_no_cycle(krate: &str, src: &Path) {
    let (nodes, edges) = graph(src);
    assert!(
        nodes.len() > 3,
        "{krate}: only {nodes:?} under {}",
        src.display()
    );
    assert!(
        !edges.is_empty(),
        "{krate}: no module uses another: the reader is broken"
    );
    if let Some(cycle) = find_cycle(&nodes, &edges) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let (file, line) = &edges[&(w[0].clone(), w[1].clone())];
                let file = file.strip_prefix(src).unwrap_or(file);
                format!(
                    "  {} -> {} ({krate}/src/{}:{line})",
                    w[0],
                    w[1],
                    file.display()
                )
            })
            .collect();
        panic!(
            "{krate}: its modules import in a circle: {}\n{}",
            cycle.join(" -> "),
            steps.join("\n")
        );
    }
}

fn crate_src(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join("src")
}

#[test]
fn vit_modules_import_in_no_circle() {
    assert_no_cycle("vit", &crate_src("vit"));
}

#[test]
fn trainer_modules_import_in_no_circle() {
    assert_no_cycle("trainer", &crate_src("trainer"));
}

#[test]
fn uses_are_read_from_code_alone() {
    let code = code_only(
        r##"use crate::{config::VitConfig, model::{self, Block}, error};
// crate::commented
/* crate::blocked /* crate::nested */ */
let s = "crate::quoted"; let r = r#"crate::raw"#; let c = '"';
fn f<'a>(x: &'a str) -> crate::weights::Manifest { $crate::rng::next() }
"##,
    );
    let names: Vec<String> = crate_uses(&code).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["config", "model", "error", "weights", "rng"]);
    assert_eq!(crate_uses(&code)[3].1, 5, "line numbers survive");
}

#[test]
fn a_circle_is_found_and_named() {
    let dir = tempdir();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("kernels")).unwrap();
    let write = |p: &str, s: &str| std::fs::write(src.join(p), s).unwrap();
    write(
        "lib.rs",
        "pub mod a; pub mod b; pub mod c; pub mod kernels;",
    );
    write("a.rs", "use crate::b::B;");
    write("b.rs", "pub struct B; fn f() { crate::kernels::go() }");
    write(
        "kernels/mod.rs",
        "mod inner;\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nmod more { use crate::a; }",
    );
    // Tests may use anything.
    write("kernels/tests.rs", "use crate::a::A;");
    // A submodule's uses count for its folder's node.
    write("kernels/inner.rs", "// crate::c is only a comment\n");
    write("c.rs", "");
    let (nodes, edges) = graph(&src);
    assert_eq!(find_cycle(&nodes, &edges), None);

    write("kernels/inner.rs", "use crate::a;\n");
    let (nodes, edges) = graph(&src);
    let cycle = find_cycle(&nodes, &edges).expect("a -> b -> kernels -> a");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    for m in ["a", "b", "kernels"] {
        assert!(cycle.iter().any(|c| c == m), "{cycle:?}");
    }
    let message = std::panic::catch_unwind(|| assert_no_cycle("toy", &src))
        .expect_err("a circle fails the check");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("kernels -> a ("), "{message}");
    assert!(message.contains("inner.rs:1"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh folder under the system's temporary one (vit's tests have no tempfile crate).
fn tempdir() -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("vit-module-cycles-{}-{now}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
