//! ftrace text, as Linux 6.1's `/sys/kernel/tracing/trace` prints it:
//! the nop-tracer header, then one line per guest event,
//! `<comm>-<pid> [cpu] <flags> <secs>.<usecs>: <event>: <TP_printk>`.
//!
//! Linux's own tracepoints keep their 6.1 names and formats (cma.h,
//! migrate.h); the guest's other records print as `cmaemu_*` events, a
//! `mark` as `tracing_mark_write` (what `trace_marker` gives), violations
//! as `cmaemu_violation`. Host-only events (frames, counters, DMA master
//! transfers) are not ftrace events and are left out.
use super::{Event, EventKind};
use cmaemu_abi::desc::dma_dev_name;
use cmaemu_abi::trace::inject_name;
use std::fmt::Write as _;
use std::io::{self, Write};

/// `__print_symbolic(mode, MIGRATE_MODE)`.
pub fn mode_name(m: u8) -> String {
    match m {
        0 => "MIGRATE_ASYNC".into(),
        1 => "MIGRATE_SYNC_LIGHT".into(),
        2 => "MIGRATE_SYNC".into(),
        v => format!("{v:#x}"),
    }
}

/// `__print_symbolic(reason, MIGRATE_REASON)` (6.1).
pub fn reason_name(r: u32) -> String {
    const R: [&str; 9] = ["compaction", "memory_failure", "memory_hotplug", "syscall_or_cpuset", "mempolicy_mbind", "numa_misplaced", "contig_range", "longterm_pin", "demotion"];
    R.get(r as usize).map(|s| s.to_string()).unwrap_or_else(|| format!("{r:#x}"))
}

/// `unsigned long` on ARM32.
fn ulong(v: u64) -> u64 {
    v & 0xffff_ffff
}

/// The `TP_printk` body and event name of a guest event (None: not an
/// ftrace event).
pub fn body(k: &EventKind) -> Option<(&'static str, String)> {
    let mut s = String::new();
    let name = match k {
        EventKind::CmaAllocStart { name, count, align } => {
            let _ = write!(s, "name={} count={} align={}", name, ulong(*count), align);
            "cma_alloc_start"
        }
        EventKind::CmaAllocFinish { name, pfn, page, count, align, .. } => {
            let _ = write!(s, "name={} pfn={:#x} page={:08x} count={} align={}", name, ulong(*pfn), page, ulong(*count), align);
            "cma_alloc_finish"
        }
        EventKind::CmaAllocBusyRetry { name, pfn, page, count, align } => {
            let _ = write!(s, "name={} pfn={:#x} page={:08x} count={} align={}", name, ulong(*pfn), page, ulong(*count), align);
            "cma_alloc_busy_retry"
        }
        EventKind::CmaRelease { name, pfn, page, count } => {
            let _ = write!(s, "name={} pfn={:#x} page={:08x} count={}", name, ulong(*pfn), page, ulong(*count));
            "cma_release"
        }
        EventKind::MigratePagesStart { mode, reason } => {
            let _ = write!(s, "mode={} reason={}", mode_name(*mode), reason_name(*reason));
            "mm_migrate_pages_start"
        }
        EventKind::MigratePages { succeeded, failed, thp_succeeded, thp_failed, thp_split, mode, reason } => {
            let _ = write!(
                s,
                "nr_succeeded={} nr_failed={} nr_thp_succeeded={} nr_thp_failed={} nr_thp_split={} mode={} reason={}",
                ulong(*succeeded),
                ulong(*failed),
                ulong(*thp_succeeded),
                ulong(*thp_failed),
                ulong(*thp_split),
                mode_name(*mode),
                reason_name(*reason)
            );
            "mm_migrate_pages"
        }
        EventKind::MigratePageBegin { old_pfn, new_pfn } => {
            let _ = write!(s, "old_pfn={old_pfn:#x} new_pfn={new_pfn:#x}");
            "cmaemu_migrate_page_begin"
        }
        EventKind::MigratePage { old_pfn, new_pfn, asid, vas } => {
            let v: Vec<String> = vas.iter().map(|v| format!("{v:#x}")).collect();
            let _ = write!(s, "old_pfn={old_pfn:#x} new_pfn={new_pfn:#x} asid={asid} nr_mappings={} vas={}", vas.len(), v.join(","));
            "cmaemu_migrate_page"
        }
        EventKind::DmaAlloc { device, pfn, count, order, errorno } => {
            let _ = write!(s, "dev={} pfn={:#x} count={count} order={order} ret={errorno}", dma_dev_name(*device), ulong(*pfn));
            "cmaemu_dma_alloc"
        }
        EventKind::DmaFree { device, pfn, count } => {
            let _ = write!(s, "dev={} pfn={:#x} count={count}", dma_dev_name(*device), ulong(*pfn));
            "cmaemu_dma_free"
        }
        EventKind::TlbFlush { scope, asid, va } => {
            let sc = match scope {
                0 => "page",
                1 => "asid",
                _ => "all",
            };
            let _ = write!(s, "scope={sc} asid={asid} va={va:#x}");
            "cmaemu_tlb_flush"
        }
        EventKind::Inject { id, pfn, arg, extra } => {
            let _ = write!(s, "injection={} pfn={:#x} arg={arg:#x} extra={extra:#x}", inject_name(*id), ulong(*pfn));
            "cmaemu_inject"
        }
        EventKind::CmaAllocPhase { phase } => {
            let _ = write!(s, "phase={}", cmaemu_abi::trace::cma_phase_name(*phase));
            "cmaemu_cma_alloc_phase"
        }
        EventKind::Mark { label } => {
            s.push_str(label);
            "tracing_mark_write"
        }
        EventKind::CmaCause(c) => {
            let super::CmaCause { name, count, align, retries, last, errorno, migrated, cause, pfn, text } = &**c;
            let _ = write!(s, "name={name} count={count} align={align} retries={retries} last={} ret={errorno} migrated={migrated} cause={cause}", *last as u8);
            if let Some(p) = pfn {
                let _ = write!(s, " pfn={p:#x}");
            }
            let _ = write!(s, " text=\"{}\"", text.replace('\n', " "));
            "cmaemu_cma_cause"
        }
        EventKind::Violation(v) => {
            let _ = write!(s, "check={}", v.check.name());
            if let Some(p) = v.pfn {
                let _ = write!(s, " pfn={p:#x}");
            }
            if let Some(p) = v.va {
                let _ = write!(s, " va={p:#x}");
            }
            if let Some(d) = v.device {
                let _ = write!(s, " dev={}", dma_dev_name(d));
            }
            let _ = write!(s, " detail=\"{}\"", v.detail.replace('\n', " "));
            "cmaemu_violation"
        }
        EventKind::DmaTransfer { .. } | EventKind::Frame { .. } | EventKind::Counters(_) | EventKind::RingLoss { .. } | EventKind::PageblockMap { .. } => return None,
        EventKind::Run(_) | EventKind::Layout(_) | EventKind::PageStates { .. } | EventKind::DisplayFrame { .. } => return None,
    };
    Some((name, s))
}

/// The task (comm, pid) an event ran in. The guest kernel has one task:
/// its shell, PID 1 (`Comm: sh` in its oopses), which runs every command
/// and steps the background jobs; the guest's own trace names it `sh-1`.
/// Violations are found at the guest's doorbells, in the same context.
pub fn task(_k: &EventKind) -> (&'static str, u32) {
    ("sh", 1)
}

/// One ftrace line (no newline) for an event, on CPU 0, in its task.
pub fn line(e: &Event) -> Option<String> {
    let (name, b) = body(&e.kind)?;
    let (comm, pid) = task(&e.kind);
    let secs = e.ts_ns / 1_000_000_000;
    let usecs = (e.ts_ns % 1_000_000_000) / 1000;
    Some(format!("{:>16}-{:<7} [{:03}] {} {:>5}.{:06}: {}: {}", comm, pid, 0, ".....", secs, usecs, name, b))
}

/// The whole trace file: header, then the lines.
pub fn write_ftrace(events: &[Event], w: &mut dyn Write) -> io::Result<()> {
    let lines: Vec<String> = events.iter().filter_map(line).collect();
    writeln!(w, "# tracer: nop")?;
    writeln!(w, "#")?;
    writeln!(w, "# entries-in-buffer/entries-written: {}/{}   #P:1", lines.len(), lines.len())?;
    writeln!(w, "#")?;
    writeln!(w, "#                                _-----=> irqs-off/BH-disabled")?;
    writeln!(w, "#                               / _----=> need-resched")?;
    writeln!(w, "#                              | / _---=> hardirq/softirq")?;
    writeln!(w, "#                              || / _--=> preempt-depth")?;
    writeln!(w, "#                              ||| / _-=> migrate-disable")?;
    writeln!(w, "#                              |||| /     delay")?;
    writeln!(w, "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION")?;
    writeln!(w, "#              | |         |   |||||     |         |")?;
    for l in lines {
        writeln!(w, "{l}")?;
    }
    Ok(())
}
