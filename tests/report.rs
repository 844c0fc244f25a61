//! The run report, the trace map and the Perfetto trace of real runs.
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn cli(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
    let o = c.wait_with_output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A directory under target/tmp (kept after the run, for people to look at).
fn out(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SCRIPT: &str = "fill 80 5\necho 2048 > /sys/kernel/debug/cma/linux,cma/alloc\npreview 6\npoweroff\n";

#[test]
fn perfetto_shows_durations_flows_and_counters_around_every_allocation() {
    let d = out("perfetto");
    let p = d.join("t.json");
    let (code, _, err) = cli(&["boot", "-m", "256M", "--trace", p.to_str().unwrap()], SCRIPT);
    assert_eq!(code, 0, "{err}");
    let doc = std::fs::read_to_string(&p).unwrap();
    cmaemu::trace::chrome::validate(&doc).unwrap();
    let v: Value = serde_json::from_str(&doc).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    let ts = |e: &Value| e["ts"].as_f64().unwrap();
    let dur = |e: &Value| e["dur"].as_f64().unwrap();
    let tid_of = |name: &str| evs.iter().find(|e| e["ph"] == "M" && e["args"]["name"] == name).map(|e| e["tid"].clone()).unwrap();
    // a scan-out spans its frame period (60 Hz)
    let clcd = tid_of("dma: clcd");
    let scan = evs.iter().find(|e| e["ph"] == "X" && e["tid"] == clcd).expect("no scan-out");
    assert!((dur(scan) - 16_666.667).abs() < 100.0, "scan-out of {} µs", dur(scan));
    // old and new pages on separate tracks, non-trivial durations, flows between them
    let (old_t, new_t) = (tid_of("migration: old pfn"), tid_of("migration: new pfn"));
    let olds: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "X" && e["tid"] == old_t).collect();
    assert!(olds.len() > 100, "{} migrations", olds.len());
    assert!(olds.iter().all(|e| dur(e) >= 0.1), "a migration slice shorter than 100 ns");
    assert!(evs.iter().filter(|e| e["ph"] == "X" && e["tid"] == new_t).count() == olds.len());
    assert!(evs.iter().filter(|e| e["ph"] == "f").all(|e| e["tid"] == new_t));
    // counters at every allocation's start and end, and CMA used per area
    let samples: Vec<f64> = evs.iter().filter(|e| e["ph"] == "C" && e["name"] == "free pages").map(ts).collect();
    let allocs: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "X" && e["name"].as_str().unwrap().starts_with("cma_alloc ")).collect();
    assert!(allocs.len() >= 2);
    for a in &allocs {
        let (s, e) = (ts(a), ts(a) + dur(a));
        if dur(a) > 1000.0 {
            assert!(samples.iter().any(|&t| t > s && t < e), "no counter sample inside the {} µs allocation at {s}", dur(a));
        }
        assert!(samples.iter().any(|&t| t >= e && t < e + 1000.0), "no counter sample within 1 ms of the end of the allocation at {s}");
    }
    for area in ["linux,cma", "camera-cma"] {
        let used: Vec<f64> = evs.iter().filter(|e| e["ph"] == "C" && e["name"] == format!("CMA used: {area}").as_str()).map(|e| e["args"]["pages"].as_f64().unwrap()).collect();
        assert!(used.len() > 2 && used.iter().any(|&u| u > 0.0), "CMA used: {area}: {used:?}");
    }
    assert!(evs.iter().filter(|e| e["ph"] == "C" && e["name"] == "CMA used: linux,cma").any(|e| e["args"]["pages"].as_f64().unwrap() >= 2048.0));
    // trace summary names a Perfetto file and says what to pass
    let (code, _, err) = cli(&["trace", "summary", p.to_str().unwrap()], "");
    assert_eq!(code, 2);
    assert!(err.contains("Perfetto") && err.contains("--trace-format jsonl"), "{err}");
    let (code, _, err) = cli(&["report", p.to_str().unwrap(), "-o", d.join("r.html").to_str().unwrap()], "");
    assert_eq!(code, 2);
    assert!(err.contains("Perfetto"), "{err}");
}

#[test]
fn report_and_map_of_a_run_are_deterministic_and_grow_with_events() {
    let d = out("determinism");
    let run = |n: &str| {
        let (t, r) = (d.join(format!("{n}.jsonl")), d.join(format!("{n}.html")));
        let (code, _, err) = cli(&["boot", "-m", "256M", "--trace-format", "jsonl", "--trace", t.to_str().unwrap(), "--report", r.to_str().unwrap()], SCRIPT);
        assert_eq!(code, 0, "{err}");
        (std::fs::read(&t).unwrap(), std::fs::read(&r).unwrap())
    };
    let (t1, r1) = run("a");
    let (t2, r2) = run("b");
    assert!(t1 == t2, "traces differ");
    assert!(r1 == r2, "reports differ");
    // `cmaemu report` of the trace gives the same data as `boot --report`
    let r3 = d.join("c.html");
    let (code, _, err) = cli(&["report", d.join("a.jsonl").to_str().unwrap(), "-o", r3.to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    let data = |b: &[u8]| -> Value {
        let s = String::from_utf8_lossy(b);
        let open = "<script id=\"data\" type=\"application/json\">";
        let a = s.find(open).unwrap() + open.len();
        let e = a + s[a..].find("</script>").unwrap();
        serde_json::from_str(&s[a..e].replace("<\\/", "</")).unwrap()
    };
    let (d1, d3) = (data(&r1), data(&std::fs::read(&r3).unwrap()));
    for k in ["frames", "pb", "ps", "allocs", "migr", "counters", "display", "run", "layout"] {
        assert_eq!(d1[k], d3[k], "{k}");
    }
    // the page states are deltas: the full map once, then changes only
    let ps = d1["ps"].as_array().unwrap();
    assert_eq!(ps.iter().filter(|p| p[1] == 1).count(), 1, "one full page map");
    let frames = d1["frames"].as_array().unwrap().len();
    let nr_pages = d1["layout"]["nr_pages"].as_u64().unwrap() as usize;
    assert!(r1.len() < frames * nr_pages / 4, "report of {} bytes for {frames} frames of {nr_pages} pages", r1.len());
    assert_eq!(d1["run"]["ram_bytes"], 256u64 << 20);
    assert_eq!(d1["run"]["profile"], "debian-6.1");
    let a = d1["allocs"].as_array().unwrap();
    assert!(a.iter().any(|x| x[0] == "linux,cma" && x[1] == 2048 && x[7].is_u64() && x[9].as_u64().unwrap() > 100), "{a:?}");
    // the trace map of the busiest frame, with pages
    let png = d.join("map.png");
    let last = frames - 1;
    let (code, _, err) = cli(&["trace", "map", d.join("a.jsonl").to_str().unwrap(), "--frame", &last.to_string(), "--pages", "-o", png.to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    let (w, h, _) = cmaemu::board::frames::read_png(&png).unwrap();
    assert!(w >= 1000 && h >= 150, "{w}x{h}");
}

#[test]
fn test_report_writes_the_camera_preview_scenario_report() {
    let d = out("camera-preview");
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/camera-preview-under-pressure.toml");
    // a bad directory is refused before anything runs
    let (code, _, err) = cli(&["test", ex, "--report", "/nonexistent/dir/x"], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--report"), "{err}");
    let (code, out_, err) = cli(&["test", ex, "--report", d.to_str().unwrap()], "");
    assert_eq!(code, 0, "{out_}{err}");
    let html = std::fs::read_to_string(d.join("camera-preview-under-pressure.html")).unwrap();
    assert!(html.contains("cmaemu report: camera-preview-under-pressure"));
    assert!(html.contains("\"result\",\"PASS\""), "the scenario's result is in the report");
    // frames flow (every frame is in the report, and the display showed camera frames)
    let open = "<script id=\"data\" type=\"application/json\">";
    let a = html.find(open).unwrap() + open.len();
    let e = a + html[a..].find("</script>").unwrap();
    let v: Value = serde_json::from_str(&html[a..e].replace("<\\/", "</")).unwrap();
    let frames = v["frames"].as_array().unwrap();
    assert!(frames.len() > 100, "{} frames", frames.len());
    assert!(frames.windows(2).all(|w| w[1][0].as_u64().unwrap() == w[0][0].as_u64().unwrap() + 1), "a frame is missing");
    assert!(v["display"].as_array().unwrap().iter().filter(|d| d[3].is_u64()).count() >= 30);
    assert!(v["migr"].as_array().unwrap().len() > 5 * 100, "migrations");
}

#[test]
fn overlay_labels_recorded_frames_with_frame_number_and_buffer() {
    let d = out("overlay");
    let (with, without) = (d.join("with"), d.join("without"));
    for (dir, extra) in [(&with, Some("--overlay")), (&without, None)] {
        let mut args = vec!["boot", "-m", "256M", "--record-frames", dir.to_str().unwrap()];
        args.extend(extra);
        let (code, _, err) = cli(&args, "preview 3\npoweroff\n");
        assert_eq!(code, 0, "{err}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&with).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    let label = |p: &PathBuf| -> Vec<u8> {
        let (w, h, rgba) = cmaemu::board::frames::read_png(p).unwrap();
        // the label box: bottom-left, 12 px high
        (h - 14..h - 2).flat_map(|y| (2..200).map(move |x| (y * w + x) as usize)).flat_map(|i| rgba[i * 4..i * 4 + 3].to_vec()).collect()
    };
    let a = label(&with.join(&names[1]));
    let b = label(&with.join(&names[2]));
    let plain = label(&without.join(&names[1]));
    assert_ne!(a, plain, "no label drawn");
    assert_ne!(a, b, "two frames carry the same label");
    let black = a.chunks(3).filter(|p| p == &[0, 0, 0]).count();
    let white = a.chunks(3).filter(|p| p == &[255, 255, 255]).count();
    assert!(black > 500 && white > 200, "black {black} white {white}: not white text on a black box");
    // the camera's header row is untouched: the scan-out checks still pass on the saved picture
    let (w, h, rgba) = cmaemu::board::frames::read_png(with.join(&names[2])).unwrap();
    let (_, _, plain_px) = cmaemu::board::frames::read_png(without.join(&names[2])).unwrap();
    assert_eq!(rgba[..(w * 4 * 8) as usize], plain_px[..(w * 4 * 8) as usize], "the top rows changed");
    assert_eq!((w, h), (320, 240));
}
