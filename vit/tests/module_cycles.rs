//! No import circles among a crate's modules: each module may use only modules "below" it, so
//! that a reader can start at the leaves and never meet a module that needs one not read yet.
//!
//! The test reads each crate's `src/` files and builds a graph whose nodes are the crate's
//! top-level modules. A folder module (`src/kernels/` with `mod.rs`, or `src/plots.rs` beside
//! `src/plots/`) is one node with all its files; then the same check runs inside each folder,
//! whose nodes are its own files and folders, so a folder's modules form layers too. An edge
//! `a -> b` is a path that names `b` anywhere in `a`'s code, comments and string literals left
//! out: `crate::b...` (or `$crate::b...`, or an item of a `crate::{b, ...}` group, nested groups
//! too), `super::b...` and `self::b...`, each resolved from the module it is written in (an
//! inline `mod x { ... }` counts as a level). The crate root (`lib.rs`, `main.rs`) and a
//! folder's `mod.rs` are no nodes: they declare the modules, and a binary's modules may name its
//! items. Test code (`#[cfg(test)]` items, inline or a test module's own file) is left out:
//! tests sit above what they test.
//!
//! It runs on `vit`, `trainer` and `web`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where one module uses another: the using file and line.
type Edges = BTreeMap<(String, String), (PathBuf, usize)>;

/// The modules of a folder (by name) and the files of each: a crate's top-level modules for
/// `src/`.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            out.entry(stem).or_default().extend(files);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !["lib", "main", "mod"].contains(&stem.as_str())
        {
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

/// The paths of a use tree starting at `i` (`a::b`, `a::{b, c::d}`, `a::*`), each as its
/// segments, and where the tree ends.
fn tree_paths(b: &[char], i: usize) -> (Vec<Vec<String>>, usize) {
    let i = skip_space(b, i);
    if b.get(i) == Some(&'{') {
        let mut out = Vec::new();
        let mut k = i + 1;
        while k < b.len() {
            k = skip_space(b, k);
            match b.get(k) {
                Some('}') => return (out, k + 1),
                Some(',') => k += 1,
                _ => {
                    let (paths, end) = tree_paths(b, k);
                    out.extend(paths.into_iter().filter(|p| !p.is_empty()));
                    k = end.max(k + 1);
                }
            }
        }
        return (out, k);
    }
    let (name, end) = ident_at(b, i);
    if name.is_empty() {
        return (vec![Vec::new()], i);
    }
    let k = skip_space(b, end);
    if b.get(k) == Some(&':') && b.get(k + 1) == Some(&':') {
        let (subs, end) = tree_paths(b, k + 2);
        let paths = subs
            .into_iter()
            .map(|mut p| {
                p.insert(0, name.clone());
                p
            })
            .collect();
        return (paths, end);
    }
    (vec![vec![name]], end)
}

/// How many inline modules (`mod x { ... }`) enclose each position of `code`.
fn inline_depths(b: &[char]) -> Vec<usize> {
    let mut out = vec![0; b.len() + 1];
    let mut braces = 0usize;
    let mut open: Vec<usize> = Vec::new(); // the brace depth inside each inline module
    let mut i = 0;
    while i < b.len() {
        out[i] = open.len();
        match b[i] {
            '{' => braces += 1,
            '}' => {
                if open.last() == Some(&braces) {
                    open.pop();
                }
                braces = braces.saturating_sub(1);
            }
            'm' if !ident_before(b, i) => {
                let (word, end) = ident_at(b, i);
                if word == "mod" {
                    let (_, after) = ident_at(b, skip_space(b, end));
                    let k = skip_space(b, after);
                    if b.get(k) == Some(&'{') {
                        for o in &mut out[i..=k] {
                            *o = open.len();
                        }
                        braces += 1;
                        open.push(braces);
                        i = k + 1;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out[b.len()] = open.len();
    out
}

/// Every module path named in `code`, written in the module at `module` (a path from the crate
/// root, `[]` for `lib.rs`), resolved from the crate root, with its line (1-based): after
/// `crate::` (or `$crate::`), and after `self::` and `super::` (once an inline module's own
/// levels are taken off).
fn crate_uses(code: &str, module: &[String]) -> Vec<(Vec<String>, usize)> {
    let b: Vec<char> = code.chars().collect();
    let depths = inline_depths(&b);
    let line_of = |i: usize| b[..i].iter().filter(|&&c| c == '\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let after_path = i >= 2 && b[i - 1] == ':' && b[i - 2] == ':';
        let at_word = !(ident_before(&b, i) || after_path);
        let (word, end) = ident_at(&b, i);
        let colons = |k: usize| b.get(k) == Some(&':') && b.get(k + 1) == Some(&':');
        if !at_word || word.is_empty() || !colons(end) {
            i = end.max(i + 1);
            continue;
        }
        let base: Option<(Vec<String>, usize)> = match word.as_str() {
            "crate" => Some((Vec::new(), end + 2)),
            "self" if depths[i] == 0 => Some((module.to_vec(), end + 2)),
            "super" => {
                // super::super::...: one level up per `super`, inline modules first.
                let mut ups = 1;
                let mut k = end + 2;
                loop {
                    let (w, e) = ident_at(&b, k);
                    if w == "super" && colons(e) {
                        ups += 1;
                        k = e + 2;
                    } else {
                        break;
                    }
                }
                let ups = ups - ups.min(depths[i]);
                (ups <= module.len()).then(|| (module[..module.len() - ups].to_vec(), k))
            }
            _ => None,
        };
        let Some((base, start)) = base else {
            i = end;
            continue;
        };
        let line = line_of(i);
        let (paths, stop) = tree_paths(&b, start);
        for p in paths.into_iter().filter(|p| !p.is_empty()) {
            let mut full = base.clone();
            full.extend(p);
            out.push((full, line));
        }
        i = stop.max(end);
    }
    out
}

/// A file's module path from the crate root: `src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if path.last().is_some_and(|l| l == "mod") {
        path.pop();
    }
    path
}

/// The test modules in files of their own, by path: `#[cfg(test)] mod tests;` in
/// `src/kernels/mod.rs` is `src/kernels/tests.rs` (or `tests/mod.rs`); and each file's code,
/// tests left out.
fn read_code(src: &Path) -> (BTreeSet<PathBuf>, BTreeMap<PathBuf, String>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut test_files = BTreeSet::new();
    let mut code = BTreeMap::new();
    for file in files {
        let (text, tests) = without_tests(&code_only(&std::fs::read_to_string(&file).unwrap()));
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
        code.insert(file, text);
    }
    (test_files, code)
}

/// Every use of one module of the folder `folder` (a module path, `[]` for `src/` itself) by
/// another of its modules, with the first place it happens.
fn graph_in(src: &Path, folder: &[String]) -> (BTreeSet<String>, Edges) {
    let dir = folder.iter().fold(src.to_path_buf(), |d, f| d.join(f));
    let mods = modules(&dir);
    let nodes: BTreeSet<String> = mods.keys().cloned().collect();
    let mut edges = Edges::new();
    let (test_files, code) = read_code(src);
    for (from, files) in &mods {
        for file in files.iter().filter(|f| !test_files.contains(*f)) {
            let here = module_path(src, file);
            for (path, line) in crate_uses(&code[file], &here) {
                if path.len() > folder.len() && path[..folder.len()] == *folder {
                    let to = &path[folder.len()];
                    if to != from && nodes.contains(to) {
                        edges
                            .entry((from.clone(), to.clone()))
                            .or_insert_with(|| (file.clone(), line));
                    }
                }
            }
        }
    }
    (nodes, edges)
}

/// Every use of one top-level module by another, with the first place it happens.
fn graph(src: &Path) -> (BTreeSet<String>, Edges) {
    graph_in(src, &[])
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

/// Panics naming the circle, and where each of its uses is, when `src` or one of its folders
/// has one.
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
    let mut folders = vec![Vec::new()];
    while let Some(folder) = folders.pop() {
        let dir = folder
            .iter()
            .fold(src.to_path_buf(), |d, f: &String| d.join(f));
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let mut sub = folder.clone();
                sub.push(path.file_name().unwrap().to_string_lossy().to_string());
                folders.push(sub);
            }
        }
        let (nodes, edges) = graph_in(src, &folder);
        let Some(cycle) = find_cycle(&nodes, &edges) else {
            continue;
        };
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
        let at = if folder.is_empty() {
            String::new()
        } else {
            format!(" (in src/{})", folder.join("/"))
        };
        panic!(
            "{krate}: its modules import in a circle{at}: {}\n{}",
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
fn web_modules_import_in_no_circle() {
    assert_no_cycle("web", &crate_src("web"));
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
    let uses = crate_uses(&code, &[]);
    let names: Vec<&str> = uses.iter().map(|(p, _)| p[0].as_str()).collect();
    assert_eq!(
        names,
        ["config", "model", "model", "error", "weights", "rng"]
    );
    assert_eq!(uses[1].0, ["model", "self"]);
    assert_eq!(uses[4].1, 5, "line numbers survive");

    // super:: and self:: from the module they are written in; an inline module is a level.
    let here = ["plots".to_string(), "curves".to_string()];
    let code = code_only(
        "use super::canvas::{Area, font};\nuse self::inner::X;\n\
         mod inner { use super::super::layout; fn f() { super::g() } }\n\
         fn h() { super::super::main_item(); pub(super) fn k() {} }",
    );
    let paths: Vec<Vec<String>> = crate_uses(&code, &here)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        paths,
        [
            vec!["plots", "canvas", "Area"],
            vec!["plots", "canvas", "font"],
            vec!["plots", "curves", "inner", "X"],
            vec!["plots", "layout"],
            vec!["plots", "curves", "g"],
            vec!["main_item"],
        ]
    );
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

    // Inside a folder, its own modules form layers too.
    write("kernels/inner.rs", "use super::outer::O;\n");
    write("kernels/outer.rs", "pub struct O;\n");
    assert_no_cycle("toy", &src);
    write(
        "kernels/outer.rs",
        "pub struct O;\nfn f() { crate::kernels::inner::go() }\n",
    );
    let (nodes, edges) = graph(&src);
    assert_eq!(find_cycle(&nodes, &edges), None, "one node at the top");
    let message = std::panic::catch_unwind(|| assert_no_cycle("toy", &src))
        .expect_err("a circle inside a folder fails the check");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("(in src/kernels)"), "{message}");
    assert!(message.contains("outer -> inner ("), "{message}");
    assert!(message.contains("outer.rs:2"), "{message}");
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
