//! `cmaemu sweep` with parameter axes: the verdict, the shards every
//! cluster engine starts (Kubernetes Indexed Job, GitLab CI parallel,
//! GitHub Actions matrix, a Slurm array's variables) merged byte for byte
//! into the single-machine result, and bad input rejected before any boot.
//! (`scripts/slurm-test.sh` runs the same through a real Slurm.)
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cmaemu-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

const ENGINE_VARS: [&str; 9] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_COUNT",
    "JOB_COMPLETION_INDEX",
    "CMAEMU_SHARD_COUNT",
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "CI",
];

/// Run the CLI with exactly these engine variables.
fn cli_env(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cmaemu"));
    for v in ENGINE_VARS {
        c.env_remove(v);
    }
    c.args(args).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).stdin(Stdio::null());
    let out = c.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn cli(args: &[&str]) -> (i32, String, String) {
    cli_env(args, &[])
}

/// A small sweep: 4 MiB pageblocks, so cma=4M makes a 4 MiB area that
/// fails the CmaTotal expectation and 8M passes; two RAM sizes; 2 seeds.
fn scenario() -> PathBuf {
    let f = tmp("sized.toml");
    std::fs::write(
        &f,
        r#"name = "sized"
[board]
ram = "32M"
bootargs = "console=ttyAMA0 cmaemu.profile=biscuitos-5.0"
[[step]]
send = "fill 1 {seed}"
expect_line = "fill: 256 pages"
[[expect]]
counter = "meminfo.CmaTotal >= 8192"
[sweep]
seeds = "0..2"
[sweep.axes]
cma = ["8M", "4M"]
ram = "32M,48M"
"#,
    )
    .unwrap();
    f
}

fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn verdict_and_every_engines_shards_merge_to_the_single_machine_result() {
    let f = scenario();
    let fs = f.to_str().unwrap();
    let local = tmp("local.jsonl");
    let png = tmp("local.png");
    let (code, _, err) = cli(&["sweep", fs, "--jobs", "2", "--out", local.to_str().unwrap(), "--plot", png.to_str().unwrap()]);
    assert_eq!(code, 1, "cma=4M fails on purpose: {err}");
    let l = lines(&local);
    let kinds: Vec<&str> = l.iter().map(|x| x["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sweep", "run", "run", "run", "run", "run", "run", "run", "run", "combination", "combination", "combination", "combination", "smallest", "smallest"]);
    assert_eq!(l[0]["runs"], 8);
    assert_eq!(l[0]["shard"], serde_json::Value::Null);
    for r in &l[1..9] {
        let four = r["params"]["cma"] == "4M";
        assert_eq!(r["pass"].as_bool(), Some(!four), "{r}");
        if four {
            assert!(r["cause"].as_str().unwrap().contains("meminfo.CmaTotal >= 8192"), "{r}");
        }
    }
    assert_eq!(l[9]["params"], serde_json::json!({"cma": "8M", "ram": "32M"}));
    assert_eq!((l[9]["passed"].as_u64(), l[11]["passed"].as_u64()), (Some(2), Some(0)));
    for s in &l[13..] {
        assert_eq!((s["axis"].as_str(), s["value"].as_str()), (Some("cma"), Some("8M")), "{s}");
    }
    assert!(err.contains("smallest cma that passes every seed with ram=32M: 8M"), "{err}");
    assert!(err.contains("cma  ram  runs  pass  rate"), "{err}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"), "plot");
    let whole = std::fs::read(&local).unwrap();

    // the same sweep in 3 shards, as each engine starts them
    type Shard = Box<dyn Fn(u64) -> (Vec<&'static str>, Vec<(&'static str, String)>)>;
    let engines: [(&str, Shard); 4] = [
        ("github", Box::new(|k| (vec!["--shard", ["0/3", "1/3", "2/3"][k as usize]], vec![]))),
        ("kubernetes", Box::new(|k| (vec!["--shard", "auto", "--shard-count", "3"], vec![("JOB_COMPLETION_INDEX", k.to_string())]))),
        ("gitlab", Box::new(|k| (vec!["--shard", "auto"], vec![("CI_NODE_INDEX", (k + 1).to_string()), ("CI_NODE_TOTAL", "3".into())]))),
        (
            "slurm",
            Box::new(|k| {
                let v = |n: &'static str, x: u64| (n, x.to_string());
                (vec!["--shard", "auto"], vec![v("SLURM_ARRAY_TASK_ID", 10 + k), v("SLURM_ARRAY_TASK_MIN", 10), v("SLURM_ARRAY_TASK_MAX", 12), v("SLURM_ARRAY_TASK_COUNT", 3)])
            }),
        ),
    ];
    for (name, how) in &engines {
        let mut files = Vec::new();
        for k in 0..3 {
            let out = tmp(&format!("{name}-{k}.jsonl"));
            let (mut args, env) = how(k);
            let o = out.to_str().unwrap().to_string();
            let mut a = vec!["sweep", fs, "--out", o.as_str()];
            a.append(&mut args);
            let (code, _, err) = cli_env(&a, &env);
            assert!(code == 0 || code == 1, "{name} shard {k}: {err}");
            assert_eq!(lines(&out)[0]["shard"], format!("{k}/3"), "{name}");
            files.push(out);
        }
        let merged = tmp(&format!("{name}-merged.jsonl"));
        let mut a = vec!["sweep".to_string(), "merge".into(), "--out".into(), merged.display().to_string()];
        // any order
        a.extend(files.iter().rev().map(|f| f.display().to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, _, err) = cli(&a);
        assert_eq!(code, 1, "{name}: merge of a sweep with failures: {err}");
        assert!(std::fs::read(&merged).unwrap() == whole, "{name}: the merged result differs from the single-machine one");
        if *name == "github" {
            let f0 = files[0].to_str().unwrap();
            let f2 = files[2].to_str().unwrap();
            let (code, _, err) = cli(&["sweep", "merge", f0, f2]);
            assert_eq!(code, 2);
            assert!(err.contains("missing shard(s): 1/3"), "{err}");
            let (code, _, err) = cli(&["sweep", "merge", f0, f0, f2]);
            assert_eq!(code, 2);
            assert!(err.contains("given twice"), "{err}");
        }
    }
}

#[test]
fn bad_axes_shards_and_paths_are_errors_before_any_boot() {
    let f = scenario();
    let fs = f.to_str().unwrap();
    let check = |args: &[&str], env: &[(&str, String)], want: &str| {
        let mut a = vec!["sweep", fs];
        a.extend_from_slice(args);
        let (code, _, err) = cli_env(&a, env);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in {err}");
        assert!(!err.contains("runs on"), "{args:?} ran boots: {err}");
    };
    check(&["--axis", "ram=256"], &[], "axis ram: value \"256\"");
    check(&["--axis", "profile=debian-7"], &[], "\"debian-7\"");
    check(&["--axis", "cmaemu.max_order=99"], &[], "out of range");
    check(&["--axis", "dt.nowhere=8M"], &[], "has no /reserved-memory/nowhere");
    check(&["--axis", "cma=1M..=4000M:1M", "--seeds", "0..1000"], &[], "more than");
    check(&["--size-axis", "colour"], &[], "not one of the axes");
    check(&["--shard", "auto"], &[], "no cluster engine");
    check(&["--shard", "auto"], &[("JOB_COMPLETION_INDEX", "0".into())], "--shard-count");
    check(&["--shard", "auto"], &[("CI_NODE_INDEX", "0".into()), ("CI_NODE_TOTAL", "2".into())], "from 1");
    check(&["--out", "/nonexistent/dir/x.jsonl"], &[], "/nonexistent/dir/x.jsonl");
    check(&["--plot", "/nonexistent/dir/x.png"], &[], "/nonexistent/dir/x.png");
    check(&["--shard", "0/2", "--plot", "/tmp/x.png"], &[], "merge");
    let (code, _, err) = cli(&["sweep", "merge", fs]);
    assert_eq!(code, 2);
    assert!(err.contains("sized.toml:1"), "{err}");
}

/// The axes reach the guest: `dt.camera-cma` resizes the camera's pool
/// in the DTB (CmaTotal grows), `profile` sets `cmaemu.profile=`.
#[test]
fn dt_and_profile_axes_reach_the_guest() {
    let f = tmp("dt.toml");
    std::fs::write(
        &f,
        r#"[board]
ram = "256M"
[[step]]
send = "cat /proc/cmaemu/config"
[[expect]]
counter = "meminfo.CmaTotal >= 81920"
[[expect]]
line = "cmaemu.profile=biscuitos-5.0"
"#,
    )
    .unwrap();
    let out = tmp("dt.jsonl");
    let (code, _, err) = cli(&[
        "sweep",
        f.to_str().unwrap(),
        "--seeds",
        "0..1",
        "--axis",
        "dt.camera-cma=8M,16M",
        "--axis",
        "profile=debian-6.1,biscuitos-5.0",
        "--jobs",
        "2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    let runs: Vec<(String, String, bool)> = lines(&out)
        .iter()
        .filter(|l| l["type"] == "run")
        .map(|r| (r["params"]["dt.camera-cma"].as_str().unwrap().into(), r["params"]["profile"].as_str().unwrap().into(), r["pass"].as_bool().unwrap()))
        .collect();
    let want: Vec<(String, String, bool)> = [("8M", "debian-6.1", false), ("8M", "biscuitos-5.0", false), ("16M", "debian-6.1", false), ("16M", "biscuitos-5.0", true)]
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect();
    assert_eq!(runs, want, "{err}");
    assert!(err.contains("smallest dt.camera-cma that passes every seed with profile=biscuitos-5.0: 16M"), "{err}");
    assert!(err.contains("no dt.camera-cma passes every seed with profile=debian-6.1"), "{err}");
}
