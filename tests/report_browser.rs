//! The HTML report in a real browser: headless Chromium (Debian's
//! `chromium`, installed here with apt-get when missing) loads a report of
//! a booted run over the DevTools protocol; the test fails on any console
//! error, uncaught exception or network request, moves the frame slider
//! and checks the map changed, and checks that an allocation the trace
//! holds is on the timeline. Outputs (report, trace, screenshots) are
//! left under target/tmp/report-browser/.
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

const APT: &[&str] = &["-o", "DPkg::Lock::Timeout=900"];

fn have(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(cmd)).find(|f| f.is_file()))
}

/// The Chromium binary, installed from Debian's archive when missing.
/// Never skips: a machine that cannot install it fails with the reason.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CMAEMU_CHROMIUM") {
        return PathBuf::from(p);
    }
    if let Some(p) = have("chromium") {
        return p;
    }
    let install = || Command::new("apt-get").args(APT).args(["install", "-y", "--no-install-recommends", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive").output();
    let mut out = install();
    if !out.as_ref().is_ok_and(|o| o.status.success()) {
        let _ = Command::new("apt-get").args(APT).arg("update").output();
        out = install();
    }
    match (&out, have("chromium")) {
        (Ok(o), Some(p)) if o.status.success() => p,
        (Ok(o), _) => panic!(
            "the browser test needs Debian's `chromium` and `apt-get install chromium` failed (run it as root, or set CMAEMU_CHROMIUM=/path/to/chromium):\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        (Err(e), _) => panic!("the browser test needs Debian's `chromium`; apt-get could not run ({e}); install it or set CMAEMU_CHROMIUM"),
    }
}

/// A headless Chromium, killed when dropped.
struct Browser {
    child: Child,
    _profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

/// Start Chromium and return it with its DevTools websocket URL.
fn launch(out: &Path) -> (Browser, String) {
    let profile = out.join(format!("profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1300,1800",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let b = Browser { child, _profile: profile };
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("chromium did not print its DevTools address within 60 s");
    (b, url)
}

/// A DevTools-protocol session on one page (flattened target sessions).
struct Cdp {
    ws: WebSocket<TcpStream>,
    next: u64,
    session: Option<String>,
    /// Events received so far (method, params).
    events: Vec<(String, Value)>,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let hostport = url.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let stream = TcpStream::connect(&hostport).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (ws, _) = tungstenite::client(url, stream).expect("DevTools websocket handshake");
        Cdp { ws, next: 1, session: None, events: Vec::new() }
    }

    /// Call `method` and return its result (panics on a protocol error).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "{method}: no answer within 60 s");
            let m = match self.ws.read().unwrap() {
                Message::Text(t) => t,
                _ => continue,
            };
            let v: Value = serde_json::from_str(m.as_str()).unwrap();
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            if let Some(meth) = v.get("method").and_then(Value::as_str) {
                self.events.push((meth.to_string(), v["params"].clone()));
            }
        }
    }

    /// Wait for an event `method` (already received or not).
    fn wait_event(&mut self, method: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.events.iter().any(|(m, _)| m == method) {
            assert!(Instant::now() < deadline, "no {method} within 60 s");
            if let Message::Text(t) = self.ws.read().unwrap() {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if let Some(meth) = v.get("method").and_then(Value::as_str) {
                    self.events.push((meth.to_string(), v["params"].clone()));
                }
            }
        }
    }

    /// Evaluate a JavaScript expression in the page and return its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}));
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("`{expr}` threw: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Console errors, uncaught exceptions, error log entries and network
    /// requests that are not the report itself.
    fn problems(&self, report_url: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (m, p) in &self.events {
            match m.as_str() {
                "Runtime.exceptionThrown" => out.push(format!("uncaught exception: {}", p["exceptionDetails"])),
                "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert" | "warning")) => out.push(format!("console.{}: {}", p["type"].as_str().unwrap_or(""), p["args"])),
                "Log.entryAdded" if p["entry"]["level"].as_str() == Some("error") => out.push(format!("log error: {}", p["entry"])),
                "Network.requestWillBeSent" => {
                    let u = p["request"]["url"].as_str().unwrap_or("");
                    if u != report_url && !u.starts_with("data:") {
                        out.push(format!("network request: {u}"));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Boot the board with `script` on the console, writing a JSON-lines
/// trace and the report; returns (trace, report).
fn run_with_report(dir: &Path, name: &str, script: &str) -> (PathBuf, PathBuf) {
    use std::io::Write;
    let trace = dir.join(format!("{name}.jsonl"));
    let report = dir.join(format!("{name}.html"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_cmaemu"))
        .args(["boot", "-m", "256M", "--trace-format", "jsonl", "--trace"])
        .arg(&trace)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "boot failed: {}", String::from_utf8_lossy(&o.stderr));
    (trace, report)
}

/// The first successful allocation of the trace (pfn) and the frame with
/// the most migrated pages.
fn trace_facts(trace: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(trace).unwrap();
    let mut pfn = None;
    let mut per_frame = std::collections::BTreeMap::<u64, u64>::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        match v["event"].as_str() {
            Some("cma_alloc_finish") if pfn.is_none() && v["errorno"] == 0 => pfn = v["pfn"].as_u64(),
            Some("migrate_page") => *per_frame.entry(v["frame"].as_u64().unwrap()).or_default() += 1,
            _ => {}
        }
    }
    let busiest = per_frame.iter().max_by_key(|(_, n)| **n).map(|(f, _)| *f).expect("the run migrated no page");
    (pfn.expect("the run allocated nothing from CMA"), busiest)
}

fn screenshot(cdp: &mut Cdp, path: &Path) {
    use base64::Engine as _;
    let r = cdp.call("Page.captureScreenshot", json!({"format": "png"}));
    let bytes = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn report_loads_in_chromium_and_its_slider_and_timeline_work() {
    let dir = out_dir();
    let script = "fill 80 7\necho 2048 > /sys/kernel/debug/cma/linux,cma/alloc\npreview 8\necho 2048 > /sys/kernel/debug/cma/linux,cma/free\npoweroff\n";
    let (trace, report) = run_with_report(&dir, "browser", script);
    let (pfn, busy_frame) = trace_facts(&trace);
    let (_browser, ws) = launch(&dir);
    let mut cdp = Cdp::connect(&ws);
    let target = cdp.call("Target.createTarget", json!({"url": "about:blank"}));
    let sid = cdp.call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
    cdp.session = sid["sessionId"].as_str().map(String::from);
    for m in ["Runtime.enable", "Log.enable", "Page.enable", "Network.enable"] {
        cdp.call(m, json!({}));
    }
    let url = format!("file://{}", report.canonicalize().unwrap().display());
    cdp.call("Page.navigate", json!({"url": url}));
    cdp.wait_event("Page.loadEventFired");
    assert_eq!(cdp.eval("!!(window.cmaReport && window.cmaReport.ready)"), json!(true), "the report's script did not finish: {:?}", cdp.problems(&url));
    let load_ms = cdp.eval("performance.getEntriesByType('navigation')[0].loadEventEnd");
    eprintln!("report {} bytes, loaded in {load_ms} ms", std::fs::metadata(&report).unwrap().len());
    screenshot(&mut cdp, &dir.join("browser-frame-first.png"));

    // the slider moves the map
    let before = cdp.eval("document.getElementById('map').toDataURL()");
    let idx = cdp.eval(&format!(
        "(function(){{var s=document.getElementById('slider');var n=+s.max;for(var i=0;i<=n;i++){{window.cmaReport.setFrame(i);if(window.cmaReport.frame()>={busy_frame})break;}}var v=+s.value;window.cmaReport.setFrame(0);s.value=v;s.dispatchEvent(new Event('input'));return v;}})()"
    ));
    assert!(idx.as_u64().unwrap() > 0, "slider index {idx}");
    assert_eq!(cdp.eval("window.cmaReport.frame()"), json!(busy_frame), "the slider's input event did not select the frame");
    let after = cdp.eval("document.getElementById('map').toDataURL()");
    assert_ne!(before, after, "moving the slider to frame {busy_frame} (where pages migrated) left the map unchanged");
    let info = cdp.eval("document.getElementById('frameinfo').textContent");
    assert!(info.as_str().unwrap().contains(&format!("frame {busy_frame} ")), "{info}");
    assert!(!info.as_str().unwrap().contains("migrations in frame: 0"), "{info}");
    screenshot(&mut cdp, &dir.join("browser-frame-busy.png"));

    // the known allocation is on the timeline and in the table
    let bar = cdp.eval(&format!("(function(){{var r=document.querySelector('#timeline rect[data-kind=alloc][data-pfn=\"{pfn}\"]');return r?r.textContent:null;}})()"));
    let title = bar.as_str().unwrap_or_else(|| panic!("no timeline bar for the allocation at pfn {pfn:#x}"));
    assert!(title.contains(&format!("pfn {pfn:#x}")) && title.contains("latency") && title.contains("pages migrated"), "{title}");
    let row = cdp.eval(&format!("(function(){{var t=document.querySelectorAll('#alloctable td.addr');for(var i=0;i<t.length;i++)if(t[i].textContent==='{pfn:#x}')return t[i].parentNode.textContent;return null;}})()"));
    assert!(row.as_str().is_some_and(|r| r.contains("linux,cma") && r.contains("ok")), "{row}");
    // clicking the bar selects the allocation
    cdp.eval(&format!("document.querySelector('#timeline rect[data-kind=alloc][data-pfn=\"{pfn}\"]').dispatchEvent(new MouseEvent('click', {{bubbles: true}}))"));
    let detail = cdp.eval("document.getElementById('allocdetail').textContent");
    assert!(detail.as_str().unwrap().contains(&format!("got pfn {pfn:#x}")), "{detail}");

    // zoom into a pageblock
    cdp.eval("(function(){var c=document.getElementById('map');var r=c.getBoundingClientRect();c.dispatchEvent(new MouseEvent('click',{clientX:r.left+100,clientY:r.top+40,bubbles:true}));})()");
    let z = cdp.eval("document.getElementById('zoom').width");
    assert!(z.as_u64().unwrap() > 100, "zoom canvas not drawn: {z}");

    // play advances frames
    cdp.eval("window.cmaReport.setFrame(0); document.getElementById('play').click()");
    std::thread::sleep(Duration::from_millis(600));
    let f = cdp.eval("document.getElementById('play').click(); +document.getElementById('slider').value");
    assert!(f.as_u64().unwrap() >= 2, "play did not advance: {f}");

    let problems = cdp.problems(&url);
    assert!(problems.is_empty(), "the report logged problems:\n{}", problems.join("\n"));

    // the report of the camera-preview example, from `cmaemu test --report`
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/camera-preview-under-pressure.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(["test", ex, "--report"]).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let page = dir.join("camera-preview-under-pressure.html");
    let url2 = format!("file://{}", page.canonicalize().unwrap().display());
    cdp.events.clear();
    cdp.call("Page.navigate", json!({"url": url2}));
    cdp.wait_event("Page.loadEventFired");
    assert_eq!(cdp.eval("!!(window.cmaReport && window.cmaReport.ready)"), json!(true), "{:?}", cdp.problems(&url2));
    let load_ms = cdp.eval("performance.getEntriesByType('navigation')[0].loadEventEnd");
    eprintln!("camera-preview report {} bytes, loaded in {load_ms} ms", std::fs::metadata(&page).unwrap().len());
    let n = cdp.eval("window.cmaReport.frames").as_u64().unwrap();
    let before = cdp.eval("document.getElementById('map').toDataURL()");
    cdp.eval(&format!("(function(){{var s=document.getElementById('slider');s.value={};s.dispatchEvent(new Event('input'));}})()", n / 2));
    assert_ne!(before, cdp.eval("document.getElementById('map').toDataURL()"), "the map did not change between frame 0 and the middle of the run");
    screenshot(&mut cdp, &dir.join("camera-preview-under-pressure.png"));
    let problems = cdp.problems(&url2);
    assert!(problems.is_empty(), "the camera-preview report logged problems:\n{}", problems.join("\n"));

    // violations are listed and each links to its frame
    let trace3 = dir.join("violations.jsonl");
    let page3 = dir.join("violations.html");
    let o = Command::new(env!("CARGO_BIN_EXE_cmaemu"))
        .args(["boot", "-m", "256M", "--append", "console=ttyAMA0 cmaemu.inject=skip_copy", "--trace-format", "jsonl", "--trace"])
        .arg(&trace3)
        .arg("--report")
        .arg(&page3)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"fill 80 3\necho 2048 > /sys/kernel/debug/cma/linux,cma/alloc\npoweroff\n")?;
            c.wait_with_output()
        })
        .unwrap();
    // exit 5: the verifiers found the injected bug (the report is written all the same)
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    let url3 = format!("file://{}", page3.canonicalize().unwrap().display());
    cdp.events.clear();
    cdp.call("Page.navigate", json!({"url": url3}));
    cdp.wait_event("Page.loadEventFired");
    let n = cdp.eval("document.querySelectorAll('#violations tr').length - 1").as_u64().unwrap();
    assert!(n >= 1, "no violation listed");
    let link = cdp.eval("(function(){var a=document.querySelector('#violations a.fr');window.cmaReport.setFrame(0);a.click();return +a.getAttribute('data-frame');})()");
    assert_eq!(cdp.eval("window.cmaReport.frame()"), link, "the violation's link did not select its frame");
    assert!(cdp.eval("document.querySelectorAll('#timeline rect[data-kind=violation]').length").as_u64().unwrap() >= 1);
    let problems = cdp.problems(&url3);
    assert!(problems.is_empty(), "the violations report logged problems:\n{}", problems.join("\n"));
}

/// Load time of reports in Chromium: `CMAEMU_REPORTS="base.html a.html
/// ..."` (the first is the baseline), each loaded 5 times, interleaved;
/// prints the median time to the load event and to the report's script
/// being ready, and the ratio to the baseline. A figure, not a check:
///
///     CMAEMU_REPORTS="small.html big.html" cargo test --release --test report_browser report_load_time -- --ignored --nocapture
#[test]
#[ignore]
fn report_load_time() {
    let files: Vec<PathBuf> = std::env::var("CMAEMU_REPORTS").expect("set CMAEMU_REPORTS").split_whitespace().map(|p| PathBuf::from(p).canonicalize().unwrap()).collect();
    let dir = out_dir();
    let (_browser, ws) = launch(&dir);
    let mut cdp = Cdp::connect(&ws);
    let target = cdp.call("Target.createTarget", json!({"url": "about:blank"}));
    let sid = cdp.call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
    cdp.session = sid["sessionId"].as_str().map(String::from);
    for m in ["Runtime.enable", "Page.enable"] {
        cdp.call(m, json!({}));
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); files.len()];
    for _ in 0..5 {
        for (i, f) in files.iter().enumerate() {
            cdp.events.clear();
            cdp.call("Page.navigate", json!({"url": format!("file://{}", f.display())}));
            cdp.wait_event("Page.loadEventFired");
            assert_eq!(cdp.eval("!!(window.cmaReport && window.cmaReport.ready)"), json!(true), "{}", f.display());
            times[i].push(cdp.eval("performance.getEntriesByType('navigation')[0].loadEventEnd").as_f64().unwrap());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let base = median(&mut times[0].clone());
    for (f, t) in files.iter().zip(times.iter_mut()) {
        let m = median(t);
        println!("{:>10} bytes  load {:>8.1} ms (median of 5)  {:>6.2}x baseline  {}", std::fs::metadata(f).unwrap().len(), m, m / base, f.display());
    }
}
