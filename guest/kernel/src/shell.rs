//! The console shell on UART0: `cat` of /proc, debugfs and sysfs views,
//! `dmesg`, `poweroff`, and the test commands.
use crate::arch;
use crate::console::Console;
use crate::drivers::{sysreg, timer};
use crate::mm::{with_mm, Mm};
use crate::{paging, print, println, setup};

/// Run a command's work on the mm state.
fn on_mm(f: impl FnOnce(&mut Mm)) {
    with_mm(f);
}
use cmaemu_mm::memblock::MemblockTypeId;
use core::fmt::Write;

pub const PROMPT: &str = "# ";

pub fn run() -> ! {
    println!();
    println!("cmaemu shell: type 'help' for commands");
    // Publish the state the boot left (its last allocations ran outside
    // any mm section): the host checks what it reads.
    crate::hostif::begin();
    crate::mm::publish::end_unheld();
    let mut buf = [0u8; 512];
    loop {
        crate::jobs::notify_done();
        print!("{}", PROMPT);
        crate::hostif::at_prompt(true);
        let n = crate::console::read_line(&mut buf);
        crate::hostif::at_prompt(false);
        let line = core::str::from_utf8(&buf[..n]).unwrap_or("");
        exec(line.trim());
    }
}

fn help() {
    println!("commands:");
    println!("  help                      this text");
    println!("  dmesg                     the kernel log");
    println!("  cat FILE                  read a file (see files: below)");
    println!("  echo VALUE > FILE         write a file: cma/<area>/alloc and free (pages),");
    println!("                            tracing events/.../enable (0|1), trace (clear),");
    println!("                            /dev/cma_test (1: run the seed article's test)");
    println!("  ls [DIR]                  list a directory (default /)");
    println!("  uptime                    time since boot (virtual)");
    println!("  echo TEXT                 print TEXT");
    println!("  crash undef|dabt|pabt|svc|stack raise that exception");
    println!("  spin TURNS [xorshift]     run a tight ALU loop (benchmarks)");
    println!("  task [new|N]              list / create / switch user address spaces");
    println!("  fill MiB [SEED]           map movable anonymous pages and write a pattern");
    println!("  fill leave MiB [SEED]     the same, page by page until at most MiB are free");
    println!("  check [in S E]            verify the pattern through the task's VAs (all, or");
    println!("                            only pages with S <= pfn < E)");
    println!("  free MiB [out S E]        unmap and free pages from the top (only frames");
    println!("                            outside [S, E) with `out`)");
    println!("  memcpy MiB                copy MiB between kernel buffers (benchmark baseline)");
    println!("  pin N | pin in S E        hold page references (get_user_pages): the first N");
    println!("                            pages, or the first page with S <= pfn < E");
    println!("  unpin                     drop all pins");
    println!("  dma alloc AREA N          dma_alloc_coherent of N pages through the");
    println!("                            cmaemu,dma-test device whose memory-region is AREA");
    println!("  dma free AREA             free that device's oldest live allocation");
    println!("  cmastat                   free CMA pages per zone, and those on the per-CPU lists");
    println!("  capture N [in S E]        camera writes N small frames into this task's pages");
    println!("                            (USERPTR, pinned) while they are compacted");
    println!("  share T N [in S E]        map N pages of this task (the first, or frames in");
    println!("                            [S, E)) into task T too");
    println!("                            (a shared anonymous mapping: two tasks, one frame)");
    println!("  poweroff [CODE]           power off; CODE is the emulator's exit status");
    println!("  preview N [zerocopy]      camera -> display for N frames (buffers in CMA)");
    println!("  stress SECONDS [SEED] &   background fill/free/pin + CMA allocations");
    println!("  CMD &, jobs, kill %N      background jobs");
    println!("  camera queue ADDR SIZE    hand the camera a buffer by hand");
    println!("  display base ADDR         show one frame from ADDR");
    println!("  sleep MS                  let virtual time pass (jobs run)");
    println!("  reboot                    restart the board");
    println!("keys: left/right, Home/End, Delete, backspace, Ctrl-U, Ctrl-W edit the line;");
    println!("      up/down walk the history; Ctrl-C stops preview and sleep");
    println!("files:");
    let mut path = [0u8; 160];
    walk(&mut path, 1, &mut |p| println!("  {}", p));
}

/// The virtual file system: a directory's entries (directories end in
/// `/`), or None when `dir` is not a directory. CMA area directories come
/// from the areas themselves.
fn dir_entries(dir: &str, f: &mut dyn FnMut(&str)) -> bool {
    let fixed: &[&str] = match dir {
        "/" => &["dev/", "proc/", "sys/"],
        "/dev" => &["cma_test"],
        "/proc" => &["buddyinfo", "cmaemu/", "cmdline", "iomem", "meminfo", "pagetypeinfo", "uptime", "vmstat", "zoneinfo"],
        "/proc/cmaemu" => &["config"],
        "/sys" => &["kernel/"],
        "/sys/kernel" => &["debug/", "mm/", "tracing/"],
        "/sys/kernel/debug" => &["cma/", "memblock/", "tracing/"],
        "/sys/kernel/debug/memblock" => &["memory", "reserved"],
        "/sys/kernel/mm" => &["cma/"],
        "/sys/kernel/tracing" | "/sys/kernel/debug/tracing" => &["events/", "trace"],
        "/sys/kernel/tracing/events" | "/sys/kernel/debug/tracing/events" => &["cma/", "enable", "migrate/"],
        "/sys/kernel/debug/cma" | "/sys/kernel/mm/cma" => {
            with_mm(|mm| {
                let Some(areas) = &mm.areas else { return };
                for (_, c) in areas.iter() {
                    let mut name = [0u8; 64];
                    let n = c.cma_get_name().len().min(63);
                    name[..n].copy_from_slice(&c.cma_get_name().as_bytes()[..n]);
                    name[n] = b'/';
                    f(core::str::from_utf8(&name[..=n]).unwrap_or("?/"));
                }
            });
            return true;
        }
        _ => {
            let events = dir.strip_prefix("/sys/kernel/tracing/events/").or_else(|| dir.strip_prefix("/sys/kernel/debug/tracing/events/"));
            if let Some(rest) = events {
                return trace_event_entries(rest, f);
            }
            let area = dir.strip_prefix("/sys/kernel/debug/cma/").map(|a| (a, true)).or_else(|| dir.strip_prefix("/sys/kernel/mm/cma/").map(|a| (a, false)));
            if let Some((name, debugfs)) = area {
                if with_mm(|mm| mm.areas.as_ref().and_then(|a| a.find_by_name(name))).flatten().is_none() {
                    return false;
                }
                let files: &[&str] = if debugfs {
                    &["alloc", "base_pfn", "bitmap", "count", "free", "maxchunk", "order_per_bit", "used"]
                } else {
                    &["alloc_pages_fail", "alloc_pages_success"]
                };
                files.iter().for_each(|e| f(e));
                return true;
            }
            return false;
        }
    };
    fixed.iter().for_each(|e| f(e));
    true
}

/// `events/<system>[/<event>]` directories of the trace events we have.
fn trace_event_entries(rest: &str, f: &mut dyn FnMut(&str)) -> bool {
    let rest = rest.trim_end_matches('/');
    match rest.split_once('/') {
        None => {
            if !crate::trace::EVENTS.iter().any(|(s, _)| *s == rest) {
                return false;
            }
            f("enable");
            for (s, e) in crate::trace::EVENTS {
                if s == rest {
                    let mut name = [0u8; 64];
                    let n = e.len().min(63);
                    name[..n].copy_from_slice(&e.as_bytes()[..n]);
                    name[n] = b'/';
                    f(core::str::from_utf8(&name[..=n]).unwrap_or("?/"));
                }
            }
            true
        }
        Some((s, e)) => {
            if !crate::trace::EVENTS.iter().any(|(ts, te)| *ts == s && *te == e) {
                return false;
            }
            f("enable");
            true
        }
    }
}

/// Every file under the directory in `path[..len]` (which ends in `/`),
/// depth first; the debugfs tracing alias is left out.
fn walk(path: &mut [u8; 160], len: usize, out: &mut dyn FnMut(&str)) {
    path[0] = b'/';
    let mut names: [[u8; 64]; 16] = [[0; 64]; 16];
    let mut lens = [0usize; 16];
    let mut count = 0;
    let dir = core::str::from_utf8(&path[..len]).unwrap_or("/");
    let dir_key = if len > 1 { &dir[..len - 1] } else { "/" };
    let debugfs = dir_key == "/sys/kernel/debug";
    dir_entries(dir_key, &mut |e| {
        if count < 16 {
            let n = e.len().min(64);
            names[count][..n].copy_from_slice(&e.as_bytes()[..n]);
            lens[count] = n;
            count += 1;
        }
    });
    for i in 0..count {
        let e = &names[i][..lens[i]];
        if debugfs && e == b"tracing/" {
            continue;
        }
        let end = (len + e.len()).min(path.len());
        path[len..end].copy_from_slice(&e[..end - len]);
        if e.ends_with(b"/") {
            walk(path, end, out);
        } else {
            out(core::str::from_utf8(&path[..end]).unwrap_or("?"));
        }
    }
}

/// `ls [PATH]`: a directory's entries, or the path of a file.
fn ls(path: &str) {
    let p = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    if dir_entries(p, &mut |e| println!("{}", e.trim_end_matches('/'))) {
        return;
    }
    // a file: `ls FILE` prints its name, as ls does
    if let Some((dir, file)) = p.rsplit_once('/') {
        let dir = if dir.is_empty() { "/" } else { dir };
        let mut found = false;
        dir_entries(dir, &mut |e| found |= e == file);
        if found {
            println!("{}", p);
            return;
        }
    }
    println!("ls: cannot access '{}': No such file or directory", path);
}

pub fn exec(line: &str) {
    // Every command may change mm state: the host skips snapshots taken
    // while `mm_seq` is odd, and re-reads after the doorbell.
    // Long-running commands mark their own mutations (DMA allocations,
    // background job steps) so that the host can check while they run.
    // `poweroff`/`reboot` end the run: the host's final check must see a
    // stable state (mm_seq even), not one inside this command's section.
    let long = matches!(line.split_ascii_whitespace().next(), Some("preview" | "capture" | "sleep" | "poweroff" | "reboot")) || line.ends_with('&');
    if long {
        exec_inner(line);
        return;
    }
    crate::hostif::begin();
    exec_inner(line);
    crate::mm::publish::end_unheld();
}

fn exec_inner(line: &str) {
    if let Some(bg) = line.strip_suffix('&') {
        if !crate::jobs::spawn(bg) {
            println!("sh: {}: cannot run in the background", bg.trim());
        }
        return;
    }
    let mut args = line.split_ascii_whitespace();
    let Some(cmd) = args.next() else { return };
    match cmd {
        "help" => help(),
        "dmesg" => crate::printk::dump(&mut |b| crate::console::write_bytes(b)),
        "cat" => match args.next() {
            Some(path) => cat(path),
            None => println!("cat: missing operand"),
        },
        "uptime" => {
            let ns = crate::time::sched_clock();
            println!(
                "up {}.{:02} s, jiffies {}",
                ns / 1_000_000_000,
                (ns % 1_000_000_000) / 10_000_000,
                timer::JIFFIES.load(core::sync::atomic::Ordering::Relaxed)
            );
        }
        "echo" => {
            let rest = line[4..].trim_start();
            match rest.split_once('>') {
                Some((val, path)) => echo_to(val.trim(), path.trim()),
                None => println!("{}", rest),
            }
        }
        "ls" => ls(args.next().unwrap_or("/")),
        "crash" => crash(args.next().unwrap_or("")),
        "jobs" => crate::jobs::list(),
        "kill" => match args.next().and_then(|s| s.strip_prefix('%')).and_then(|s| s.parse().ok()) {
            Some(id) => {
                if !crate::jobs::kill(id) {
                    println!("sh: kill: %{}: no such job", id);
                }
            }
            None => println!("kill: usage: kill %JOB"),
        },
        "stress" => println!("stress: run it in the background: stress SECONDS [SEED] &"),
        "camera" => {
            let (a, b, c) = (args.next(), args.next().and_then(parse_num), args.next().and_then(parse_num));
            match (a, b, c) {
                (Some("queue"), Some(addr), Some(size)) => crate::video::camera_queue(addr, size),
                _ => println!("camera: usage: camera queue ADDR SIZE"),
            }
        }
        "display" => match (args.next(), args.next().and_then(parse_num)) {
            (Some("base"), Some(addr)) => crate::video::display_base(addr),
            _ => println!("display: usage: display base ADDR"),
        },
        "cmastat" => {
            let mut out = Console;
            let shown = with_mm(|mm| match &mm.pa {
                Some(pa) => cmaemu_mm::views::cmastat(pa, &mut out).is_ok(),
                None => false,
            });
            if shown != Some(true) {
                println!("cmastat: no page allocator yet");
            }
        }
        "dma" => match (args.next(), args.next(), args.next().map(|s| s.parse::<u32>())) {
            (Some("alloc"), Some(area), Some(Ok(n))) => crate::dmatest::alloc(area, n),
            (Some("free"), Some(area), None) => crate::dmatest::free(area),
            _ => println!("usage: dma alloc AREA PAGES | dma free AREA"),
        },
        "preview" => match args.next().and_then(|s| s.parse::<u32>().ok()) {
            Some(n) => crate::video::preview(n, args.next() == Some("zerocopy")),
            None => println!("preview: usage: preview FRAMES [zerocopy]"),
        },
        "sleep" => match args.next().and_then(|s| s.parse::<u64>().ok()) {
            Some(ms) => {
                let until = crate::time::sched_clock() + ms * 1_000_000;
                while crate::time::sched_clock() < until {
                    if crate::console::interrupted() {
                        crate::console::write_bytes(b"^C\n");
                        break;
                    }
                    crate::sched::idle();
                }
            }
            None => println!("sleep: usage: sleep MILLISECONDS"),
        },
        "fill" => match args.next().and_then(|s| if s == "leave" { Some(None) } else { s.parse::<u32>().ok().map(Some) }) {
            Some(None) => match args.next().and_then(|s| s.parse::<u32>().ok()) {
                Some(leave) => {
                    let seed = args.next().and_then(|s| s.parse::<u32>().ok());
                    on_mm(|mm| crate::vm::fill_leave(mm, leave, seed))
                }
                None => println!("fill: usage: fill MiB [seed] | fill leave MiB [seed]"),
            },
            Some(Some(mib)) => {
                let seed = args.next().and_then(|s| s.parse::<u32>().ok());
                on_mm(|mm| crate::vm::fill(mm, mib, seed))
            }
            None => println!("fill: usage: fill MiB [seed] | fill leave MiB [seed]"),
        },
        "check" => match args.next() {
            Some("in") => {
                let mut num = || args.next().and_then(parse_num);
                match (num(), num()) {
                    (Some(a), Some(b)) => {
                        on_mm(|mm| {
                            let _ = crate::vm::check_range(mm, a, b);
                        });
                    }
                    _ => println!("check: usage: check [in STARTPFN ENDPFN]"),
                }
            }
            _ => {
                on_mm(|mm| {
                    let _ = crate::vm::check(mm);
                });
            }
        },
        "free" => match args.next().and_then(|s| s.parse::<u32>().ok()) {
            Some(mib) => match args.next() {
                Some("out") => match (args.next().and_then(parse_num), args.next().and_then(parse_num)) {
                    (Some(a), Some(b)) => on_mm(|mm| crate::vm::free_outside(mm, mib, a, b)),
                    _ => println!("free: usage: free MiB [out STARTPFN ENDPFN]"),
                },
                _ => on_mm(|mm| crate::vm::free(mm, mib)),
            },
            None => println!("free: usage: free MiB [out STARTPFN ENDPFN]"),
        },
        "memcpy" => match args.next().and_then(|s| s.parse::<u32>().ok()) {
            Some(mib) => on_mm(|mm| crate::memcpy::memcpy_bench(mm, mib)),
            None => println!("memcpy: usage: memcpy MiB"),
        },
        "pin" => match args.next() {
            Some("in") => {
                let mut num = || args.next().and_then(parse_num);
                match (num(), num()) {
                    (Some(a), Some(b)) => on_mm(|mm| crate::vm::pin_in(mm, a, b)),
                    _ => println!("pin: usage: pin in STARTPFN ENDPFN"),
                }
            }
            Some(n) => match parse_num(n) {
                Some(n) => on_mm(|mm| crate::vm::pin(mm, n)),
                None => println!("pin: usage: pin PAGES | pin in STARTPFN ENDPFN"),
            },
            None => println!("pin: usage: pin PAGES | pin in STARTPFN ENDPFN"),
        },
        "unpin" => on_mm(crate::vm::unpin),
        "capture" => {
            let w: [Option<&str>; 4] = [args.next(), args.next(), args.next(), args.next()];
            let num = |i: usize| w[i].and_then(parse_num);
            let range = match w[1] {
                None => Some((0, u32::MAX)),
                Some("in") if w[3].is_some() => num(2).zip(num(3)),
                Some(_) => None,
            };
            match (num(0), range) {
                (Some(n), Some((s, e))) => crate::video::capture_userptr(n, s, e),
                _ => println!("capture: usage: capture FRAMES [in STARTPFN ENDPFN]"),
            }
        }
        "share" => {
            let w: [Option<&str>; 5] = [args.next(), args.next(), args.next(), args.next(), args.next()];
            let num = |i: usize| w[i].and_then(parse_num);
            let (t, n) = (num(0), num(1));
            let range = match w[2] {
                None => Some((0, u32::MAX)),
                Some("in") if w[4].is_some() => num(3).zip(num(4)),
                Some(_) => None,
            };
            match (t, n, range) {
                (Some(t), Some(n), Some((s, e))) => on_mm(|mm| crate::vm::share(mm, t as usize, n, s, e)),
                _ => println!("share: usage: share TASK PAGES [in STARTPFN ENDPFN]"),
            }
        }
        "task" => match args.next() {
            None => on_mm(|mm| crate::vm::list(mm)),
            Some("new") => match with_mm(|mm| crate::vm::task_new(mm).inspect(|&i| {
                let _ = crate::vm::switch_to(mm, i);
            })) {
                Some(Ok(i)) => println!("task {} created", i),
                Some(Err(e)) => println!("task: {}", e),
                None => {}
            },
            Some(n) => match n.parse::<usize>() {
                Ok(i) if with_mm(|mm| crate::vm::switch_to(mm, i)) == Some(true) => println!("task {} is current", i),
                _ => println!("task: no task {}", n),
            },
        },
        "spin" => match (args.next().and_then(|s| s.parse::<u32>().ok()), args.next()) {
            (Some(n), None) if n > 0 => {
                let r = arch::spin(n);
                println!("spin: {} turns, checksum {:#010x}", n, r);
            }
            (Some(n), Some("xorshift")) if n > 0 => {
                let r = arch::xorshift(n);
                println!("spin: {} xorshift turns, checksum {:#010x}", n, r);
            }
            _ => println!("spin: usage: spin TURNS [xorshift] (a 3- or 6-instruction ALU loop)"),
        },
        "poweroff" => {
            let code = match args.next() {
                None => 0,
                Some(s) => match s.parse::<u8>() {
                    Ok(c) => c,
                    Err(_) => {
                        println!("poweroff: invalid exit code '{}' (0-255)", s);
                        return;
                    }
                },
            };
            crate::pr_info!("reboot: Power down");
            // the host's final check reads the summary: publish it
            crate::hostif::begin();
            crate::mm::publish::end_unheld();
            sysreg::poweroff(code as u32)
        }
        "reboot" => {
            crate::pr_info!("reboot: Restarting system");
            sysreg::reboot()
        }
        _ => println!("sh: {}: not found", cmd),
    }
}

/// A decimal or 0x-hex number.
fn parse_num(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn crash(kind: &str) {
    match kind {
        "undef" => arch::crash::undef(),
        "dabt" => {
            let v = arch::crash::dabt(0x0bad_c0de);
            println!("read {:#x}", v);
        }
        "pabt" => arch::crash::pabt(0x0bad_c000),
        "stack" => arch::crash::bad_stack(0x0bad_0000),
        "svc" => {
            let r = arch::crash::svc(1);
            println!("svc returned r0={:#x}", r);
        }
        _ => println!("crash: usage: crash undef|dabt|pabt|svc|stack"),
    }
}

fn cat(path: &str) {
    let mut out = Console;
    match path {
        "/proc/cmdline" => setup::with_cmdline(|c| println!("{}", c)),
        "/proc/uptime" => {
            let ns = crate::time::sched_clock();
            println!("{}.{:02} {}.{:02}", ns / 1_000_000_000, (ns / 10_000_000) % 100, ns / 1_000_000_000, (ns / 10_000_000) % 100);
        }
        "/proc/iomem" => proc_iomem(&mut out),
        "/sys/kernel/debug/memblock/memory" => {
            with_mm(|mm| mm.memblock.memblock_debug_show(MemblockTypeId::Memory, &mut out).is_ok());
        }
        "/sys/kernel/debug/memblock/reserved" => {
            with_mm(|mm| mm.memblock.memblock_debug_show(MemblockTypeId::Reserved, &mut out).is_ok());
        }
        "/proc/buddyinfo" | "/proc/pagetypeinfo" | "/proc/zoneinfo" | "/proc/vmstat" | "/proc/meminfo" => {
            let shown = with_mm(|mm| {
                let anon_pages = crate::vm::anon_pages(mm);
                let page_table_pages = crate::vm::page_table_pages(mm);
                let Some(pa) = &mut mm.pa else { return false };
                // count_vm_event(CMA_ALLOC_*) lives with the CMA code
                if let Some(a) = &mm.areas {
                    pa.events.cma_alloc_success = a.vm_cma_alloc_success;
                    pa.events.cma_alloc_fail = a.vm_cma_alloc_fail;
                }
                use cmaemu_mm::views;
                let _ = match path {
                    "/proc/buddyinfo" => views::buddyinfo(pa, &mut out),
                    "/proc/pagetypeinfo" => views::pagetypeinfo(pa, &mut out),
                    "/proc/zoneinfo" => views::zoneinfo(pa, &mut out),
                    "/proc/vmstat" => views::vmstat(pa, &mut out),
                    _ => views::meminfo(pa, &views::MeminfoExtra { anon_pages, page_table_pages }, &mut out),
                };
                true
            });
            if shown != Some(true) {
                println!("cat: {}: page allocator not initialised", path);
            }
        }
        "/proc/cmaemu/config" => {
            if with_mm(|mm| mm.config.write_proc_config(&mut out).is_ok()).is_none() {
                println!("cat: {}: not available", path);
            }
        }
        "/dev/cma_test" => crate::cma_test::read(),
        "/sys/kernel/tracing/trace" | "/sys/kernel/debug/tracing/trace" => {
            crate::trace::dump(&mut |b| crate::console::write_bytes(b));
        }
        _ => {
            if let Some(st) = trace_enable_path(path).and_then(|(s, e)| crate::trace::enable_state(s, e)) {
                println!("{}", st);
            } else if with_mm(|mm| crate::debugfs::cat(mm, path, &mut out)) != Some(true) {
                println!("cat: {}: No such file or directory", path);
            }
        }
    }
}

/// `events/<system>/enable` or `events/<system>/<event>/enable` under
/// /sys/kernel/tracing (or the debugfs alias).
fn trace_enable_path(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/sys/kernel/tracing/events/")
        .or_else(|| path.strip_prefix("/sys/kernel/debug/tracing/events/"))?;
    if rest == "enable" {
        return Some(("*", "*")); // events/enable: every event
    }
    let rest = rest.strip_suffix("/enable")?;
    Some(match rest.split_once('/') {
        Some((s, e)) => (s, e),
        None => (rest, "*"),
    })
}

/// `echo VALUE > FILE` for the writable files we have.
fn echo_to(val: &str, path: &str) {
    if let Some((s, e)) = trace_enable_path(path) {
        let on = match val {
            "1" => true,
            "0" => false,
            _ => {
                println!("sh: write error: Invalid argument");
                return;
            }
        };
        if !crate::trace::set(s, e, on) {
            println!("sh: can't create {}: No such file or directory", path);
        }
        return;
    }
    if with_mm(|mm| crate::debugfs::write(mm, path, val)).flatten().is_some() {
        return;
    }
    match path {
        "/dev/cma_test" => crate::cma_test::write(),
        "/sys/kernel/tracing/trace" | "/sys/kernel/debug/tracing/trace" => crate::trace::clear(),
        _ => println!("sh: can't create {}: Permission denied", path),
    }
}

/// `/proc/iomem` as Linux 6.1 prints it (kernel/resource.c `r_show`):
/// the resources the devices' drivers request, children indented under
/// their parent; then System RAM with the kernel's code and data as
/// children (`request_standard_resources`).
fn proc_iomem(out: &mut dyn Write) {
    crate::iomem::show(out);
    let (stext, etext) = paging::kernel_text();
    let kend = paging::kernel_end();
    with_mm(|mm| proc_iomem_ram(&mm.memblock, out, stext, etext, kend));
}

/// The System RAM lines of /proc/iomem, with the kernel as children.
fn proc_iomem_ram(mb: &cmaemu_mm::memblock::Memblock, out: &mut dyn Write, stext: u32, etext: u32, kend: u32) {
    for r in mb.memory.regions() {
        let base = r.base;
        let end = r.base + r.size - 1;
        let _ = writeln!(out, "{:08x}-{:08x} : System RAM", base, end);
        let ks = arch::virt_to_phys(stext) as u64;
        if ks >= base && ks <= end {
            let _ = writeln!(out, "  {:08x}-{:08x} : Kernel code", ks, arch::virt_to_phys(etext) - 1);
            let _ = writeln!(out, "  {:08x}-{:08x} : Kernel data", arch::virt_to_phys(etext), arch::virt_to_phys(kend) - 1);
        }
    }
}
