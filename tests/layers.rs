//! Import layers: the `crate::` (and `super::`) import edges between the
//! top-level modules of a crate, checked against a layer table (bottom
//! first). A module may import from its own layer and the layers below; an
//! edge pointing up the table, an import cycle between modules, or a module
//! the table does not place fails the test.
//!
//! A crate gets its test by calling [`check_crate`] with its source root
//! and table. Edges a restructure has not removed yet are listed as
//! `known` exceptions; an exception that no longer exists fails too, so the
//! list only shrinks.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Source text without comments (line, doc and block comments) and
/// without string (also raw string) and char literal contents, so only
/// code is scanned and braces balance.
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let ident = |j: usize| b[j].is_ascii_alphanumeric() || b[j] == b'_';
        // an identifier character before `r` (but `br"…"` is a raw string)
        let ident_before = i > 0 && ident(i - 1) && !(b[i - 1] == b'b' && (i < 2 || !ident(i - 2)));
        if b[i] == b'r' && !ident_before && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) && {
            let h = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            b.get(i + 1 + h) == Some(&b'"')
        } {
            // r"…", r#"…"# (b's prefix, if any, is already out)
            let h = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat(b'#').take(h)).collect();
            i += 2 + h;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // a char literal ('x', '\n', '\'', '\u{7b}') or a lifetime ('a)
            if b.get(i + 1) == Some(&b'\\') {
                i += 3; // the quote, the backslash and the escaped character
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if let Some(c) = src[i + 1..].chars().next().filter(|c| src[i + 1 + c.len_utf8()..].starts_with('\'')) {
                i += 2 + c.len_utf8();
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else {
            let c = src[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first path segment of every `crate::` path in `code`, with
/// `crate::{a, b::c}` groups expanded.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| is_ident(c) || c == ':' || c == '$') {
            continue; // `$crate::` or `some_crate::`
        }
        heads(rest, &mut out);
    }
    out
}

/// The first segment of the path at the start of `tail`, or of each path
/// of a `{a, b::c}` group there.
fn heads(tail: &str, out: &mut BTreeSet<String>) {
    let tail = tail.trim_start();
    if let Some(group) = tail.strip_prefix('{') {
        let mut depth = 1;
        let mut seg = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => {
                    out.extend(first_segment(&seg));
                    seg.clear();
                    continue;
                }
                _ => {}
            }
            if depth == 1 {
                seg.push(c);
            } else {
                seg.push(' ');
            }
        }
        out.extend(first_segment(&seg));
    } else {
        out.extend(first_segment(tail));
    }
}

/// The top-level modules that `super::` paths in `code` name by climbing
/// to the crate root: `module` is the file's module path (`board/bus.rs`:
/// `board::bus`), to which each inline `mod NAME { … }` adds a level, and
/// each `super` of a chain takes one off. A chain that stays inside the
/// top-level module names nothing.
fn super_paths(code: &str, module: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = code.as_bytes();
    // inline modules open at brace depth d: (depth inside them)
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let ident_before = i > 0 && (is_ident(b[i - 1] as char) || b[i - 1] == b':');
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            b'm' if !ident_before && code[i..].starts_with("mod") && !code[i + 3..].starts_with(|c: char| is_ident(c)) => {
                // `mod NAME {` (not `mod NAME;`)
                let rest = code[i + 3..].trim_start();
                let name_len = rest.chars().take_while(|&c| is_ident(c)).count();
                if name_len > 0 && rest[name_len..].trim_start().starts_with('{') {
                    let open = i + 3 + (code[i + 3..].len() - rest.len()) + name_len;
                    let open = open + code[open..].find('{').unwrap();
                    inline.push(depth + 1);
                    depth += 1;
                    i = open + 1;
                    continue;
                }
            }
            b's' if !ident_before && code[i..].starts_with("super") => {
                let mut rest = &code[i..];
                let mut ups = 0;
                while let Some(r) = rest.strip_prefix("super") {
                    let r = r.trim_start();
                    let Some(r) = r.strip_prefix("::") else { break };
                    ups += 1;
                    rest = r.trim_start();
                }
                if ups > 0 {
                    let level = module.len() + inline.len();
                    if ups == level {
                        heads(rest, &mut out);
                    }
                    i = code.len() - rest.len();
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn first_segment(s: &str) -> Option<String> {
    let id: String = s.trim_start().chars().take_while(|&c| is_ident(c)).collect();
    (!id.is_empty() && id != "self").then_some(id)
}

/// The top-level modules of a crate rooted at `src` (`NAME.rs` and `NAME/`),
/// each with its files.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut m: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            let mut files = Vec::new();
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let q = e.unwrap().path();
                    if q.is_dir() {
                        stack.push(q);
                    } else if q.extension().is_some_and(|x| x == "rs") {
                        files.push(q);
                    }
                }
            }
            m.entry(name).or_default().extend(files);
        } else if p.extension().is_some_and(|x| x == "rs") && name != "main" && name != "lib" {
            m.entry(name).or_default().push(p);
        }
    }
    m
}

/// The module path of the file `f` of the crate at `src`: `board/bus.rs`
/// is `board::bus`, `board/mod.rs` and `board.rs` are `board`.
fn file_module(src: &Path, f: &Path) -> Vec<String> {
    let rel = f.strip_prefix(src).unwrap().with_extension("");
    let mut m: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if m.last().is_some_and(|l| l == "mod") {
        m.pop();
    }
    m
}

/// The import edges between the top-level modules of the crate at `src`:
/// module → modules it names through `crate::`, or through `super::`
/// chains that climb to the crate root (`super::super::cpu` in
/// `board/bus.rs`, `super::cpu` in `bench.rs`).
pub fn import_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let mut edges = BTreeMap::new();
    for (name, files) in &mods {
        let mut to = BTreeSet::new();
        for f in files {
            let code = strip_comments(&std::fs::read_to_string(f).unwrap());
            for seg in crate_paths(&code).into_iter().chain(super_paths(&code, &file_module(src, f))) {
                if seg != *name {
                    to.insert(seg);
                }
            }
        }
        edges.insert(name.clone(), to);
    }
    edges
}

/// Check the crate at `src` against `layers` (bottom first; a layer lists
/// module names, including modules declared inline in the crate root).
/// `known`: edges still allowed to break the rules, to be removed.
/// Returns every problem found.
pub fn check_crate(what: &str, src: &Path, layers: &[&[&str]], known: &[(&str, &str)]) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> = layers.iter().enumerate().flat_map(|(i, l)| l.iter().map(move |m| (*m, i))).collect();
    let edges = import_edges(src);
    let mut problems = Vec::new();
    for m in edges.keys() {
        if !layer_of.contains_key(m.as_str()) {
            problems.push(format!("{what}: module `{m}` is in no layer: place it in the table"));
        }
    }
    for m in layer_of.keys() {
        if !edges.contains_key(*m) && !std::fs::read_to_string(src.join("main.rs")).or_else(|_| std::fs::read_to_string(src.join("lib.rs"))).unwrap_or_default().contains(&format!("mod {m} ")) {
            problems.push(format!("{what}: the table names `{m}`, which is no module of the crate"));
        }
    }
    // Only edges between layered modules count (the rest name root items:
    // macros, functions of main.rs / lib.rs).
    let layered = |m: &str| layer_of.contains_key(m);
    for (from, tos) in &edges {
        for to in tos.iter().filter(|t| layered(t)) {
            let (Some(&lf), Some(&lt)) = (layer_of.get(from.as_str()), layer_of.get(to.as_str())) else { continue };
            if lt > lf {
                if !known.contains(&(from.as_str(), to.as_str())) {
                    problems.push(format!("{what}: `{from}` (layer {lf}) imports `{to}` (layer {lt}), above it"));
                }
            }
        }
    }
    // Cycles among the edges that are not known exceptions.
    let graph: BTreeMap<&str, Vec<&str>> = edges
        .iter()
        .map(|(f, tos)| {
            let v = tos.iter().filter(|t| layered(t) && !known.contains(&(f.as_str(), t.as_str()))).map(String::as_str).collect();
            (f.as_str(), v)
        })
        .collect();
    for cycle in cycles(&graph) {
        problems.push(format!("{what}: import cycle {}", cycle.join(" → ")));
    }
    for &(from, to) in known {
        let still = edges.get(from).is_some_and(|t| t.contains(to));
        let upward = layer_of.get(from) < layer_of.get(to);
        if !still {
            problems.push(format!("{what}: known exception `{from}` → `{to}` no longer exists: remove it from the list"));
        } else if !upward && !on_a_cycle(&edges, from, to, &layer_of) {
            problems.push(format!("{what}: known exception `{from}` → `{to}` breaks no rule: remove it from the list"));
        }
    }
    problems
}

/// Whether the edge `from → to` lies on a cycle of `edges`.
fn on_a_cycle(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, layer_of: &BTreeMap<&str, usize>) -> bool {
    // a path back from `to` to `from`
    let mut seen = BTreeSet::new();
    let mut stack = vec![to.to_string()];
    while let Some(m) = stack.pop() {
        if m == from {
            return true;
        }
        if !seen.insert(m.clone()) {
            continue;
        }
        if let Some(n) = edges.get(&m) {
            stack.extend(n.iter().filter(|t| layer_of.contains_key(t.as_str())).cloned());
        }
    }
    false
}

/// One cycle (as a closed path) per strongly connected component with
/// more than one module.
fn cycles<'a>(g: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    // Tarjan's strongly connected components.
    struct St<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        on: BTreeSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        sccs: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, g: &BTreeMap<&'a str, Vec<&'a str>>, s: &mut St<'a>) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for &w in g.get(v).map(Vec::as_slice).unwrap_or(&[]) {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut c = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                c.push(w);
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                s.sccs.push(c);
            }
        }
    }
    let mut s = St { index: BTreeMap::new(), low: BTreeMap::new(), on: BTreeSet::new(), stack: Vec::new(), next: 0, sccs: Vec::new() };
    for &v in g.keys() {
        if !s.index.contains_key(v) {
            visit(v, g, &mut s);
        }
    }
    // a closed path inside each component: walk edges that stay in it
    s.sccs
        .iter()
        .map(|c| {
            let set: BTreeSet<&str> = c.iter().copied().collect();
            let start = *c.iter().min().unwrap();
            let mut path = vec![start];
            let mut seen = BTreeSet::from([start]);
            let mut cur = start;
            loop {
                let next = g[cur].iter().copied().filter(|w| set.contains(w)).find(|w| *w == start || !seen.contains(w));
                match next {
                    Some(w) if w == start => {
                        path.push(w);
                        break;
                    }
                    Some(w) => {
                        seen.insert(w);
                        path.push(w);
                        cur = w;
                    }
                    None => {
                        // dead end inside the component: close through any member edge
                        path.push(start);
                        break;
                    }
                }
            }
            path
        })
        .collect()
}

/// The guest kernel's layers, bottom first (issue 11): the platform
/// (CPU, devices, console, time, text logs), the host channel (trace ring
/// push, doorbell, `mm_seq`, clock, injection mask), the mm state and its
/// one owner (`with_mm`; with the reverse map, the task table and the
/// publisher of the host's descriptor, which reads only that state), what
/// works on it (vm, CMA, the migration environment), the services on
/// those (DMA API, debugfs, the memcpy baseline), and the kernel proper
/// (boot, shell, jobs, drivers of the DMA masters and of the oracle's
/// dma-test devices, `cma_test`, traps).
const GUEST_LAYERS: &[&[&str]] = &[
    &["arch", "head", "kallsyms", "dt", "paging"],
    &["drivers", "time", "console", "printk", "sched", "trace"],
    &["hostif"],
    &["mm"],
    &["vm", "cma", "migrate"],
    &["dma", "debugfs", "memcpy"],
    &["iomem", "video", "jobs", "setup", "shell", "traps", "cma_test", "dmatest"],
];

/// Edges of the guest kernel that still break the layers (none left).
const GUEST_KNOWN: &[(&str, &str)] = &[];

/// The host crate's layers, bottom first (issue 11; ARCHITECTURE.md draws
/// them): guest physical memory (RAM, MMU walk, memory map), findings,
/// output paths and the one worker pool; the CPU (the only Unicorn user), device models, loaders
/// and guest snapshots; the event stream, the pure checkers and the cause
/// finder of failed allocations; the one
/// instrumentation (ring → events → checks → violations); the board (bus,
/// run loop, stepping); scenarios; benchmarks, the fuzzer and the
/// differential oracle against the real kernel; the bodies of the
/// command line's subcommands (`main.rs` is only clap and the dispatch).
const HOST_LAYERS: &[&[&str]] = &[
    &["memory", "findings", "outpath", "pool"],
    &["cpu", "devices", "loader", "introspect"],
    &["trace", "verify", "explain"],
    &["instrument"],
    &["board"],
    &["scenario"],
    &["bench", "fuzz", "oracle"],
    &["cli"],
];

#[test]
fn host_crate_imports_follow_the_layers() {
    let src = root().join("emulator/src");
    let problems = check_crate("emulator", &src, HOST_LAYERS, &[]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // no sideways edges either: each layer's modules are independent
    let edges = import_edges(&src);
    for layer in HOST_LAYERS {
        for from in layer.iter() {
            for to in edges.get(*from).into_iter().flatten() {
                assert!(!layer.contains(&to.as_str()), "emulator: `{from}` imports `{to}` of its own layer");
            }
        }
    }
}

#[test]
fn guest_kernel_imports_follow_the_layers() {
    let problems = check_crate("guest/kernel", &root().join("guest/kernel/src"), GUEST_LAYERS, GUEST_KNOWN);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A crate's source tree of `files` (path, text) in a fresh temporary
/// directory named after `name` and this process.
fn fake_crate(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    for (path, text) in files {
        let f = d.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    d
}

#[test]
fn the_checker_finds_cycles_upward_edges_and_groups() {
    let code = strip_comments("use crate::{a::x, b, c::{d, e}};\n// crate::zz\nfn f() { crate::g::h(); $crate::no; other_crate::no; \"crate::s\"; }");
    assert_eq!(crate_paths(&code).into_iter().collect::<Vec<_>>(), ["a", "b", "c", "g"]);
    let d = fake_crate(
        "cmaemu-layers",
        &[
            ("main.rs", "mod low;\nmod mid;\nmod top;\n"),
            ("low.rs", "use crate::mid::x;\n"),
            ("mid.rs", "use crate::low::y;\n"),
            ("top/mod.rs", "use super::inner;\nuse crate::{low, mid};\n"),
            ("top/inner.rs", "fn f() { crate::top::g(); }\n"),
        ],
    );
    let layers: &[&[&str]] = &[&["low"], &["mid"], &["top"]];
    let p = check_crate("t", &d, layers, &[]);
    assert!(p.iter().any(|l| l.contains("`low` (layer 0) imports `mid` (layer 1)")), "{p:?}");
    assert!(p.iter().any(|l| l.contains("import cycle")), "{p:?}");
    assert_eq!(p.len(), 2, "{p:?}");
    // the same edge as a known exception passes, and an unused one fails
    let p = check_crate("t", &d, layers, &[("low", "mid")]);
    assert!(p.is_empty(), "{p:?}");
    let p = check_crate("t", &d, &[&["low", "mid"], &["top"]], &[("top", "low"), ("low", "mid")]);
    assert!(p.iter().any(|l| l.contains("`top` → `low` breaks no rule")), "{p:?}");
    // an unplaced module
    let p = check_crate("t", &d, &[&["low", "mid"]], &[("low", "mid")]);
    assert!(p.iter().any(|l| l.contains("`top` is in no layer")), "{p:?}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn super_chains_that_reach_the_crate_root_are_edges() {
    // top.rs: one `super` reaches the root; inside `mod t { }`, two do
    let code = strip_comments("use super::x;\nmod t {\n    use super::super::up;\n    use super::sibling;\n    fn f() { let _ = ('{', '\\'', r#\"crate::raw {\"#, \"}\"); }\n}\npub(super) fn g() {}\nuse super::{a, b::c};\n");
    assert!(!code.contains("crate::raw"), "{code}");
    let top = ["top".to_string()];
    assert_eq!(super_paths(&code, &top).into_iter().collect::<Vec<_>>(), ["a", "b", "up", "x"]);
    // top/inner.rs: the same chains stay inside `top`
    let inner = ["top".to_string(), "inner".to_string()];
    assert!(super_paths(&code, &inner).is_empty());
    assert_eq!(super_paths("fn f() { super::super::low::y(); }", &inner).into_iter().collect::<Vec<_>>(), ["low"]);
    // in a crate: an upward edge through `super::super` from a test module
    let d = fake_crate(
        "cmaemu-layers-super",
        &[
            ("main.rs", "mod low;\nmod top;\n"),
            ("low.rs", "#[cfg(test)]\nmod tests {\n    use super::super::top::z;\n}\n"),
            ("top/mod.rs", "mod inner;\n"),
            ("top/inner.rs", "use super::super::low::y;\n"),
        ],
    );
    let p = check_crate("t", &d, &[&["low"], &["top"]], &[]);
    assert!(p.iter().any(|l| l.contains("`low` (layer 0) imports `top` (layer 1)")), "{p:?}");
    assert_eq!(import_edges(&d)["top"].iter().collect::<Vec<_>>(), ["low"]);
    let _ = std::fs::remove_dir_all(&d);
}
