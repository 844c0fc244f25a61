//! The host crate's import layers: every `crate::` path in
//! `emulator/src` (outside tests) names a module of a lower layer than the
//! module it is written in. A cycle between modules, an edge up the layers
//! or between two modules of one layer, or a module missing from the table
//! fails, naming the file and the edge. ARCHITECTURE.md draws the same
//! table.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The host crate's modules, bottom layer first.
const HOST_LAYERS: &[&[&str]] = &[
    // guest physical memory (RAM, MMU walk, memory map); findings; output paths
    &["memory", "findings", "outpath"],
    // the CPU (the only Unicorn user), device models, image and DTB loaders,
    // guest snapshots
    &["cpu", "devices", "loader", "introspect"],
    // the event stream and its writers; the pure checkers
    &["trace", "verify"],
    // one instrumentation: ring -> events -> checks -> violations
    &["instrument"],
    // the board: bus, run loop, stepping
    &["board"],
    &["scenario"],
    &["bench", "fuzz"],
];

/// `crate::MODULE` edges of every module under `src` (the first path
/// component below `src`; `lib.rs` and `main.rs` are the roots), each
/// with the file it is written in. Test code is left out: `tests.rs`
/// files and a trailing `#[cfg(test)] mod tests { ... }`.
fn crate_edges(src: &Path) -> BTreeMap<(String, String), PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let name = rel.file_name().unwrap().to_string_lossy();
            if !name.ends_with(".rs") || name == "tests.rs" || rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
                continue;
            }
            let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            let text = match text.find("#[cfg(test)]\nmod tests {") {
                Some(i) => &text[..i],
                None => &text[..],
            };
            for target in crate_paths(text) {
                if target != module {
                    out.entry((module.clone(), target)).or_insert_with(|| rel.to_path_buf());
                }
            }
        }
    }
    out
}

/// The modules named by `crate::NAME` and `crate::{NAME, ...}` in code
/// (comments stripped).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n");
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // `cmaemu_crate::` and the like are not `crate::`
        if code[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|s| ident(s.trim())).filter(|s| !s.is_empty()));
        } else {
            let n = ident(rest);
            if !n.is_empty() {
                out.insert(n);
            }
        }
    }
    out
}

/// Every problem with `edges` against `layers`: unknown modules, edges
/// that do not point down, cycles.
fn layer_violations(edges: &BTreeMap<(String, String), PathBuf>, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |m: &str| layers.iter().position(|l| l.contains(&m));
    let mut bad = Vec::new();
    for ((from, to), file) in edges {
        match (layer_of(from), layer_of(to)) {
            (None, _) => bad.push(format!("{}: module `{from}` is not in the layer table", file.display())),
            (_, None) => bad.push(format!("{}: `{from}` imports `{to}`, which is not in the layer table", file.display())),
            (Some(a), Some(b)) if b >= a => bad.push(format!(
                "{}: `{from}` (layer {a}) imports `{to}` (layer {b}): {}",
                file.display(),
                if a == b { "same layer" } else { "up the layers" }
            )),
            _ => {}
        }
    }
    bad.extend(cycles(edges).into_iter().map(|c| format!("import cycle: {}", c.join(" -> "))));
    bad
}

/// The import cycles of `edges` (one path per cycle found).
fn cycles(edges: &BTreeMap<(String, String), PathBuf>) -> Vec<Vec<String>> {
    let mut succ: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        succ.entry(from).or_default().push(to);
    }
    // 0 unvisited, 1 on the stack, 2 done
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    let mut found = Vec::new();
    fn visit<'a>(n: &'a str, succ: &BTreeMap<&'a str, Vec<&'a str>>, state: &mut BTreeMap<&'a str, u8>, path: &mut Vec<&'a str>, found: &mut Vec<Vec<String>>) {
        state.insert(n, 1);
        path.push(n);
        for &m in succ.get(n).map(Vec::as_slice).unwrap_or(&[]) {
            match state.get(m).copied().unwrap_or(0) {
                0 => visit(m, succ, state, path, found),
                1 => {
                    let at = path.iter().position(|&p| p == m).unwrap();
                    let mut c: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
                    c.push(m.to_string());
                    found.push(c);
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n, 2);
    }
    let nodes: Vec<&str> = succ.keys().copied().collect();
    for n in nodes {
        if state.get(n).copied().unwrap_or(0) == 0 {
            visit(n, &succ, &mut state, &mut Vec::new(), &mut found);
        }
    }
    found
}

#[test]
fn host_crate_imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = crate_edges(&src);
    assert!(edges.len() > 20, "too few crate:: edges found ({}): is {} the host crate?", edges.len(), src.display());
    let bad = layer_violations(&edges, HOST_LAYERS);
    assert!(bad.is_empty(), "host crate layering:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_catches_cycles_upward_and_unknown_edges() {
    let e = |pairs: &[(&str, &str)]| -> BTreeMap<(String, String), PathBuf> { pairs.iter().map(|(a, b)| ((a.to_string(), b.to_string()), PathBuf::from(format!("{a}.rs")))).collect() };
    let layers: &[&[&str]] = &[&["low"], &["mid", "mid2"], &["top"]];
    assert!(layer_violations(&e(&[("top", "mid"), ("mid", "low")]), layers).is_empty());
    let up = layer_violations(&e(&[("low", "top")]), layers);
    assert!(up.iter().any(|l| l.contains("up the layers")), "{up:?}");
    let same = layer_violations(&e(&[("mid", "mid2")]), layers);
    assert!(same.iter().any(|l| l.contains("same layer")), "{same:?}");
    let unknown = layer_violations(&e(&[("top", "nowhere")]), layers);
    assert!(unknown.iter().any(|l| l.contains("not in the layer table")), "{unknown:?}");
    let cyc = layer_violations(&e(&[("top", "mid"), ("mid", "top")]), layers);
    assert!(cyc.iter().any(|l| l.starts_with("import cycle: ")), "{cyc:?}");
    // the edge extractor: paths, groups, comments and look-alikes
    let p = crate_paths("use crate::memory::GuestRam;\nuse crate::{trace::Event, verify};\n// crate::board\nlet x = cmaemu_crate::y; crate::cpu::Stop");
    assert_eq!(p.into_iter().collect::<Vec<_>>(), vec!["cpu", "memory", "trace", "verify"]);
}
