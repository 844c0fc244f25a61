//! Random shell sessions and command lines against the booted guest, with
//! the verifiers on. Users type anything: every command must come back to
//! the prompt (no oops, no hang), the verifiers must stay silent (no
//! mapping, migration or allocator-state damage), and at the end `check`
//! must still find every user page's pattern intact.
use cmaemu::board::machine::Step;

mod common;
use common::{shell_machine as machine, Rng};

/// Numbers that break parsers and arithmetic.
fn num(r: &mut Rng) -> String {
    let small = r.below(40).to_string();
    let any = (r.next() as u32).to_string();
    r.pick(&["0", "1", "2", "3", "7", "64", "255", "256", "1024", "4096", "16384", "65536", "-1", "0x10", "4294967295", "4294967296", "18446744073709551615", "99999999999999999999999", "1e3", "", "abc", &small, &any])
        .to_string()
}

/// A PFN-ish bound for `check in` / `free out` / `pin in`.
fn pfn(r: &mut Rng) -> String {
    let near = format!("{:#x}", 0x60000 + r.below(0x10000));
    r.pick(&["0", "0x60000", "0x6a000", "0x6e000", "0x70000", "0xfffff", "0xffffffff", "zz", &near]).to_string()
}

fn command(r: &mut Rng) -> String {
    let area = r.pick(&["linux,cma", "camera-cma", "reserved", "nope", ""]);
    match r.below(27) {
        0 => format!("fill {} {}", r.pick(&["0", "1", "2", "5", "17", "40", "100000", "4294967295", "-3", "x"]), num(r)),
        1 => format!("free {}", r.pick(&["0", "1", "3", "9", "100000", "-1", "q"])),
        2 => format!("free {} out {} {}", r.pick(&["1", "4", "50"]), pfn(r), pfn(r)),
        3 => "check".into(),
        4 => format!("check in {} {}", pfn(r), pfn(r)),
        5 => format!("pin {}", num(r)),
        6 => format!("pin in {} {}", pfn(r), pfn(r)),
        7 => "unpin".into(),
        8 => r.pick(&["task", "task new", "task 0", "task 1", "task 7", "task 99999", "task -1"]).into(),
        9 | 10 => format!("echo {} > /sys/kernel/debug/cma/{area}/alloc", num(r)),
        11 => format!("echo {} > /sys/kernel/debug/cma/{area}/free", num(r)),
        12 => r.pick(&["echo 1 > /dev/cma_test", "cat /dev/cma_test", "echo 0 > /dev/cma_test"]).into(),
        13 => format!(
            "cat {}",
            r.pick(&[
                "/proc/meminfo", "/proc/vmstat", "/proc/pagetypeinfo", "/proc/buddyinfo", "/proc/zoneinfo", "/proc/iomem",
                "/sys/kernel/debug/memblock/reserved", "/sys/kernel/tracing/trace", "/nonexistent", "",
            ])
        ),
        14 => format!("cat /sys/kernel/debug/cma/{area}/{}", r.pick(&["count", "used", "maxchunk", "order_per_bit", "base_pfn", "bitmap", "alloc", "nope"])),
        15 => format!("cat /sys/kernel/mm/cma/{area}/{}", r.pick(&["alloc_pages_success", "alloc_pages_fail", "x"])),
        16 => format!("memcpy {}", r.pick(&["0", "1", "3", "500", "-1", "y"])),
        17 => format!("preview {}{}", r.pick(&["0", "1", "2", "5", "x"]), r.pick(&["", " zerocopy", " bogus"])),
        18 => r.pick(&["stress 1 &", "jobs", "kill %1", "kill %9", "kill 1", "sleep 20", "sleep x", "spin 1000", "spin x", "spin 5 xorshift", "spin 5 bogus"]).into(),
        19 => r.pick(&["echo 1 > /sys/kernel/tracing/events/cma/enable", "echo 0 > /sys/kernel/tracing/events/enable", "echo > /sys/kernel/tracing/trace", "echo 1 > /sys/kernel/tracing/events/migrate/mm_migrate_pages/enable"]).into(),
        20 => {
            // junk
            let n = r.below(80);
            (0..n).map(|_| r.pick(&['a', ' ', '>', '%', '&', '/', '0', '9', '-', ','])).collect()
        }
        // the camera writing into this task's pinned pages while they are
        // compacted (`camera queue` and `display base` are left out: a
        // buffer handed by hand is any memory, a finding by design)
        22 => match r.below(3) {
            0 => format!("capture {}", r.pick(&["0", "1", "3", "10", "x"])),
            _ => format!("capture {} in {} {}", r.pick(&["1", "3", "8"]), pfn(r), pfn(r)),
        },
        23 => match r.below(3) {
            0 => format!("share {} {}", r.pick(&["0", "1", "2", "7", "x"]), num(r)),
            _ => format!("share {} {} in {} {}", r.pick(&["0", "1", "2"]), r.pick(&["1", "16", "300"]), pfn(r), pfn(r)),
        },
        24 => match r.below(3) {
            0 => format!("dma free {area}"),
            _ => format!("dma alloc {area} {}", num(r)),
        },
        25 => format!("fill leave {} {}", r.pick(&["0", "1", "8", "40", "100000", "x"]), num(r)),
        26 => r.pick(&["cmastat", "cat /proc/cmaemu/config", "cat /proc/cmdline", "cat /proc/uptime", "ls /proc", "ls /sys/kernel/debug/cma"]).into(),
        _ => r.pick(&["help", "dmesg", "uptime", "ls", "echo hi", "camera", "display", "crash", "crash bogus", "poweroff x", "poweroff 256"]).into(),
    }
}

/// Run one shell session (`cmds`, in order) on a fresh board: every
/// command must come back to the prompt without an oops and without a
/// violation; then, background jobs stopped, `check` must find every live
/// page's pattern intact and the verifiers still silent.
fn session(label: &str, cmds: impl IntoIterator<Item = String>) {
    let mut m = machine("console=ttyAMA0");
    let mut log = Vec::new();
    for cmd in cmds {
        log.push(cmd.clone());
        m.budget(3_000_000_000);
        let step = m.command(&cmd);
        let out = m.output();
        let tail: String = out.chars().rev().take(1500).collect::<Vec<_>>().into_iter().rev().collect();
        assert_eq!(step, Step::Paused, "{label}: `{cmd}` did not return to the prompt\ncommands: {log:?}\n{tail}");
        assert!(!out.contains("Oops") && !out.contains("Kernel panic"), "{label}: `{cmd}`\ncommands: {log:?}\n{tail}");
        let v = m.violations();
        assert!(v.is_empty(), "{label}: `{cmd}` {v:?}\ncommands: {log:?}");
    }
    // let background jobs finish, then every live page must hold its pattern
    m.budget(3_000_000_000);
    assert_eq!(m.command("kill %1"), Step::Paused);
    let before = m.output().len();
    assert_eq!(m.command("check"), Step::Paused);
    let out = m.output()[before..].to_string();
    // A page `capture` handed to the camera holds the camera's frame now
    // (the device wrote it, as asked): it differs from its pattern at
    // offset 0 with the frame header's magic. Any other difference, or
    // more bad pages than `check` lists (16), is damage.
    let captured = log.iter().any(|c| c.starts_with("capture"));
    let magic = format!("differs at offset 0x0: {:#010x} != ", cmaemu_abi::camera::HEADER_MAGIC);
    let listed = out.lines().filter(|l| l.contains("differs")).count();
    let frames = out.lines().filter(|l| captured && l.contains(&magic)).count();
    let summary_bad = out.lines().find_map(|l| l.strip_prefix("check: ")?.split_once(" of ")?.0.parse::<usize>().ok()).unwrap_or(0);
    assert!(listed == frames && summary_bad == listed && !out.contains("mismatch"), "{label}: check after {log:?}: {out}");
    assert!(m.violations().is_empty(), "{label}: {:?}", m.violations());
}

#[test]
fn random_shell_sessions_keep_the_guest_and_its_data_intact() {
    let sessions: usize = std::env::var("CMAEMU_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    // CMAEMU_FUZZ_FROM=N starts a long run at session N (the sessions
    // before it are generated, not run: the same sessions as a run from 0)
    let from: usize = std::env::var("CMAEMU_FUZZ_FROM").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut r = Rng(0x0bad_5e55_1011);
    for s in 0..sessions {
        if s < from {
            (0..25).for_each(|_| drop(command(&mut r)));
            continue;
        }
        // start from some movable pages so that CMA allocations migrate
        let cmds: Vec<String> = std::iter::once("fill 40 5".to_string()).chain((0..25).map(|_| command(&mut r))).collect();
        session(&format!("session {s}"), cmds);
    }
}

/// Sessions the random ones failed, minimised (what failed, and why):
/// each must keep passing the same checks.
const REGRESSIONS: &[(&str, &[&str])] = &[(
    // session 119 of 150: a page `pin in` pinned was unmapped by `free
    // out` (munmap does not wait for pins: the pin held it, yet the
    // ownership check called it an orphan), and `unpin` released the pin
    // through the VA's PTE, now empty, so the pin's reference leaked
    // forever (Linux's unpin_user_page releases the page that was pinned)
    "session 119 of 150: pin in, free out, unpin",
    &["fill 40 5", "pin in 0x61e56 0x6a000", "free 50 out 0x70000 0x63f6b", "sleep 20", "unpin", "unpin", "task 1", "check in 0 0x6f9b3"],
)];

#[test]
fn failed_sessions_stay_fixed() {
    for (label, cmds) in REGRESSIONS {
        session(label, cmds.iter().map(|c| c.to_string()));
    }
}

#[test]
fn random_command_lines_boot_and_allocate() {
    let iters: usize = std::env::var("CMAEMU_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let mut r = Rng(0x0c0f_fee0_0dd0);
    for i in 0..iters {
        let mut args = vec!["console=ttyAMA0".to_string()];
        for _ in 0..1 + r.below(4) {
            let v = num(&mut r);
            args.push(match r.below(12) {
                0 => format!("cma={}{}", r.pick(&["0", "1", "4M", "16M", "64M", "100M", "255M", "1G", "4G", "-8M", "M", "16Q", "0x1000000"]), r.pick(&["", "@0x60000000", "@0x70000000", "@0x9f000000", "@0", "@0x70000000-0x70100000", "@0x70000000-0x60000000", "@@", "@0x6"])),
                1 => format!("cmaemu.profile={}", r.pick(&["debian-6.1", "biscuitos-5.0", "linux-9", ""])),
                2 => format!("cmaemu.max_order={v}"),
                3 => format!("cmaemu.pageblock_order={v}"),
                4 => format!("cmaemu.vmsplit={}", r.pick(&["3G", "2G", "1G", "x"])),
                5 => format!("cmaemu.cma_size_mbytes={v}"),
                6 => format!("cmaemu.cma_size_sel={}", r.pick(&["mbytes", "percentage", "min", "max", "bogus"])),
                7 => format!("cmaemu.cma_size_percentage={v}"),
                8 => format!("trace_event={}", r.pick(&["cma:*", "migrate:*", "cma:cma_alloc_start", "nonsense", ""])),
                9 => format!("cmaemu.inject={}", r.pick(&["", "bogus", "skip_copy,bogus"])),
                10 => format!("{}={v}", r.pick(&["cma", "cmaemu.max_order", "loglevel", "quiet"])),
                _ => r.pick(&["cma", "cma=", "=", "cmaemu.", "\"quoted arg\""]).to_string(),
            });
        }
        let line = args.join(" ");
        let mut m = machine(&line);
        for cmd in ["cat /proc/meminfo", "echo 1 > /dev/cma_test", "fill 8", "echo 256 > /sys/kernel/debug/cma/linux,cma/alloc", "check"] {
            m.budget(3_000_000_000);
            let step = m.command(cmd);
            let out = m.output();
            assert_eq!(step, Step::Paused, "cmdline {i} `{line}`: `{cmd}` did not return\n{out}");
            assert!(!out.contains("Oops") && !out.contains("Kernel panic"), "cmdline {i} `{line}`: `{cmd}`\n{out}");
        }
        assert!(m.violations().is_empty(), "cmdline {i} `{line}`: {:?}", m.violations());
    }
}

/// Replay a session from a file (one command a line): a failing fuzz
/// session, reproduced alone. `CMAEMU_REPLAY=FILE cargo test replay`.
#[test]
fn replay() {
    let Ok(path) = std::env::var("CMAEMU_REPLAY") else { return };
    let mut m = machine("console=ttyAMA0");
    for cmd in std::fs::read_to_string(path).unwrap().lines() {
        m.budget(3_000_000_000);
        let step = m.command(cmd);
        let st = m.cpu().stats();
        eprintln!("`{cmd}` -> {step:?} at {} insns, {} ns idle", st.insns, st.idle_ns);
        if step != Step::Paused {
            let out = m.output();
            let tail: String = out.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
            panic!("`{cmd}` did not return:\n{tail}");
        }
    }
}
