//! Run one `bench verify` workload once, for a host profiler:
//!
//!     cargo build --release --example verify_workload
//!     perf record -g target/release/examples/verify_workload cma64 on
//!
//! Workloads: mixed, cma64, cma16, preview-stress; `on` or `off` is host
//! verification, `floor` its floor (the ring drained, nothing checked), `drain` on with a drain at every doorbell (no light doorbells). Prints the timed part's wall and virtual time. To profile
//! the timed part alone, start perf disabled with a control FIFO and name
//! it in `PERF_CTL_FIFO`:
//!
//!     mkfifo ctl ack
//!     PERF_CTL_FIFO=ctl PERF_ACK_FIFO=ack perf record -D -1 --control fifo:ctl,ack -g \
//!         target/release/examples/verify_workload cma64 on
//!
//! Under callgrind, `CALLGRIND_TIMED=1` instruments the timed part alone
//! (`callgrind_control -i on|off` around it; add `--cache-sim=yes` for
//! cache misses):
//!
//!     CALLGRIND_TIMED=1 valgrind --tool=callgrind --instr-atstart=no --smc-check=all \
//!         target/release/examples/verify_workload cma16 on
use cmaemu::bench::{VerifyMode, VerifyWorkload};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(w), Some(v)) = (args.first().and_then(|n| VerifyWorkload::from_name(n)), args.get(1).and_then(|m| VerifyMode::from_name(m))) else {
        eprintln!("usage: verify_workload mixed|cma64|cma16|preview-stress on|off|floor|drain [RUNS]");
        return ExitCode::from(2);
    };
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(1);
    let fifo = std::env::var("PERF_CTL_FIFO").ok();
    let ack = std::env::var("PERF_ACK_FIFO").ok();
    let callgrind = std::env::var_os("CALLGRIND_TIMED").is_some();
    let mut mark = |on: bool| {
        use std::io::{Read, Write};
        if callgrind {
            // waits until callgrind has switched
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("callgrind_control").args(["-i", if on { "on" } else { "off" }, &pid]).output();
        }
        if let (Some(f), Some(a)) = (&fifo, &ack) {
            if let Ok(mut c) = std::fs::OpenOptions::new().write(true).open(f) {
                let _ = c.write_all(if on { b"enable\n" } else { b"disable\n" });
            }
            if let Ok(mut a) = std::fs::File::open(a) {
                let mut b = [0u8; 5];
                let _ = a.read(&mut b);
            }
        }
    };
    for _ in 0..runs {
        match w.run_marked(v, &mut mark) {
            Ok(s) => println!(
                "{} verify {}: {:.1} ms wall, {:.3} s virtual, {} insns, {} violations",
                w.name(),
                v.name(),
                s.wall * 1e3,
                s.virt_ns as f64 / 1e9,
                s.insns,
                s.violations
            ),
            Err(e) => {
                eprintln!("verify_workload: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
