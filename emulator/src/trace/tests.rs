use super::*;
use crate::introspect::synth::SynthGuest;
use crate::introspect::Snapshot;
use crate::findings::{Check, CheckCtx};
use cmaemu_abi::desc::{DMA_DEV_CAMERA, DMA_DEV_CLCD};
use cmaemu_abi::trace::{TraceRecord, INJECT_SKIP_TLB_FLUSH, MIGRATE_SYNC, MR_CONTIG_RANGE};

fn ev(ts: u64, frame: u64, kind: EventKind) -> Event {
    Event { ts_ns: ts, frame, kind }
}

pub(crate) fn sample() -> Vec<Event> {
    let names = vec!["linux,cma".to_string(), "BiscuitOS_CMA".to_string()];
    let mut d = Decoder::new(names);
    let mut out = vec![ev(0, 0, EventKind::Frame { index: 0 })];
    let recs = [
        TraceRecord::cma_alloc_start(123_456_000, 0, 64, 6),
        TraceRecord::cma_alloc_finish(123_999_000, 0, 0x69000, 0xc0d2_0000, 64, 6, 0),
        TraceRecord::cma_alloc_start(200_000_000, 1, 256, 8),
        TraceRecord::mm_migrate_pages_start(200_000_100, MIGRATE_SYNC, MR_CONTIG_RANGE),
        TraceRecord::migrate_page_begin(200_000_200, 0x69100, 0x61234, Some((1, 0x400000))),
    ];
    for r in &recs {
        d.push(r, 0, &mut out);
    }
    let vas: Vec<u32> = (0..6).map(|i| 0x0040_0000 + i * 0x1000).collect();
    TraceRecord::migrate_page_records(200_000_300, 0x69100, 0x61234, 1, &vas, |r| d.push(&r, 0, &mut out));
    for r in [
        TraceRecord::mm_migrate_pages(200_000_400, 1, 0, 0, 0, 0, MIGRATE_SYNC, MR_CONTIG_RANGE),
        TraceRecord::cma_alloc_busy_retry(200_000_500, 1, 0x69100, 0, 256, 8),
        TraceRecord::cma_alloc_finish(201_000_000, 1, 0x69200, 0xc0d4_0000, 256, 8, 0),
        TraceRecord::dma_alloc(201_000_100, DMA_DEV_CAMERA, 0x69200, 256, 8, 0, 1),
        TraceRecord::tlb_flush(201_000_200, 0, 1, 0x0040_0000),
        TraceRecord::inject(201_000_300, INJECT_SKIP_TLB_FLUSH, 0x69100, 0x0040_0000, 0),
        TraceRecord::mark(201_000_400, "phase \"two\""),
        TraceRecord::cma_release(250_000_000, 1, 0x69200, 0xc0d4_0000, 256),
    ] {
        d.push(&r, 1, &mut out);
    }
    out.insert(9, ev(200_500_000, 1, EventKind::Frame { index: 1 }));
    out.push(ev(201_500_000, 1, EventKind::DmaTransfer { device: DMA_DEV_CAMERA, pa: 0x6920_0000, len: 1 << 20, write: true, dur_ns: 4000 }));
    out.push(ev(201_600_000, 1, EventKind::DmaTransfer { device: DMA_DEV_CLCD, pa: 0x6920_0000, len: 1 << 20, write: false, dur_ns: 4000 }));
    let mut c = crate::introspect::MmCounters::default();
    c.free_per_mt[1] = 1000;
    c.pageblocks_per_mt[4] = 4;
    c.cma_used = vec![64, 256];
    out.push(ev(201_700_000, 1, EventKind::Counters(Box::new(c))));
    let cx = CheckCtx { frame: 1, at_ns: 201_800_000, recent: vec![jsonl::event_json(&out[1])] };
    out.push(ev(201_800_000, 1, EventKind::Violation(Box::new(cx.violation(Check::MigrateTlb, Some(0x69100), Some(0x0040_0000), None, "stale \"tlb\"\nline".into())))));
    out.push(ev(201_900_000, 1, EventKind::RingLoss { lost: 3 }));
    out
}

#[test]
fn decoder_joins_multi_record_migrations() {
    let evs = sample();
    let m: Vec<_> = evs.iter().filter(|e| matches!(e.kind, EventKind::MigratePage { .. })).collect();
    assert_eq!(m.len(), 1);
    match &m[0].kind {
        EventKind::MigratePage { vas, .. } => assert_eq!(vas.len(), 6),
        _ => unreachable!(),
    }
    assert!(evs.iter().any(|e| e.kind == EventKind::CmaAllocStart { name: "BiscuitOS_CMA".into(), count: 256, align: 8 }));
}

#[test]
fn ftrace_lines_match_linux_6_1() {
    let evs = sample();
    let mut b = Vec::new();
    ftrace::write_ftrace(&evs, &mut b).unwrap();
    let t = String::from_utf8(b).unwrap();
    assert!(t.starts_with("# tracer: nop\n#\n# entries-in-buffer/entries-written: "));
    let lines: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines[0], "              sh-1       [000] .....     0.123456: cma_alloc_start: name=linux,cma count=64 align=6");
    assert_eq!(lines[1], "              sh-1       [000] .....     0.123999: cma_alloc_finish: name=linux,cma pfn=0x69000 page=c0d20000 count=64 align=6");
    assert!(t.contains(": mm_migrate_pages_start: mode=MIGRATE_SYNC reason=contig_range\n"));
    assert!(t.contains(": mm_migrate_pages: nr_succeeded=1 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_SYNC reason=contig_range\n"));
    assert!(t.contains(": cma_alloc_busy_retry: name=BiscuitOS_CMA pfn=0x69100 page=00000000 count=256 align=8\n"));
    assert!(t.contains(": cma_release: name=BiscuitOS_CMA pfn=0x69200 page=c0d40000 count=256\n"));
    assert!(t.contains(": tracing_mark_write: phase \"two\"\n"));
    assert!(t.contains(": cmaemu_violation: check=migrate.tlb pfn=0x69100 va=0x400000 detail=\"stale \"tlb\" line\"\n"));
    assert!(!t.contains("dma_transfer"));
    assert_eq!(ftrace::reason_name(99), "0x63");
    assert_eq!(ftrace::mode_name(3), "0x3");
    // 1000 s
    let l = ftrace::line(&ev(1_000_123_456_789, 0, EventKind::Mark { label: "x".into() })).unwrap();
    assert!(l.contains(" 1000.123456: tracing_mark_write: x"), "{l}");
}

#[test]
fn chrome_trace_is_valid_and_complete() {
    let evs = sample();
    let mut b = Vec::new();
    chrome::write_chrome(&evs, &mut b).unwrap();
    let doc = String::from_utf8(b).unwrap();
    let n = chrome::validate(&doc).unwrap();
    assert!(n > 20);
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let arr = v["traceEvents"].as_array().unwrap();
    let find = |ph: &str, name: &str| arr.iter().filter(|e| e["ph"] == ph && e["name"].as_str().unwrap().contains(name)).count();
    assert_eq!(find("X", "cma_alloc linux,cma"), 1);
    assert_eq!(find("X", "cma_alloc BiscuitOS_CMA"), 1);
    let span = arr.iter().find(|e| e["name"] == "cma_alloc BiscuitOS_CMA").unwrap();
    assert_eq!(span["ts"].as_f64().unwrap(), 200000.0);
    assert_eq!(span["dur"].as_f64().unwrap(), 1000.0);
    assert_eq!(find("s", "migrate"), 1);
    assert_eq!(find("f", "migrate"), 1);
    assert_eq!(find("X", "pfn 0x69100 (old)"), 1);
    assert_eq!(find("X", "pfn 0x61234 (new)"), 1);
    // old and new on their own tracks, each spanning the copy (begin at
    // 200_000_200 ns, moved at 200_000_300 ns), the arrow between them
    let old = arr.iter().find(|e| e["name"] == "pfn 0x69100 (old)").unwrap();
    let new = arr.iter().find(|e| e["name"] == "pfn 0x61234 (new)").unwrap();
    assert_ne!(old["tid"], new["tid"]);
    assert_eq!((old["ts"].as_f64().unwrap(), old["dur"].as_f64().unwrap()), (200000.2, 0.1));
    assert_eq!((new["ts"].as_f64().unwrap(), new["dur"].as_f64().unwrap()), (200000.2, 0.1));
    let f = arr.iter().find(|e| e["ph"] == "f").unwrap();
    assert_eq!(f["tid"], new["tid"]);
    assert!(f["ts"].as_f64().unwrap() >= 200000.2 && f["ts"].as_f64().unwrap() < 200000.3);
    // a DMA transfer spans its period: the camera's write ends at its capture
    let cam = arr.iter().find(|e| e["ph"] == "X" && e["tid"] == 100 + DMA_DEV_CAMERA).unwrap();
    assert_eq!((cam["ts"].as_f64().unwrap(), cam["dur"].as_f64().unwrap()), (201496.0, 4.0));
    assert_eq!(find("C", "free pages"), 1);
    assert_eq!(find("C", "pageblocks"), 1);
    assert_eq!(find("C", "CMA used: area0"), 1);
    assert_eq!(find("C", "CMA used: area1"), 1);
    assert_eq!(find("M", "thread_name"), 7);
    assert!(arr.iter().any(|e| e["ph"] == "M" && e["args"]["name"] == "dma: camera"));
    assert!(arr.iter().any(|e| e["ph"] == "X" && e["tid"] == 100 + DMA_DEV_CLCD && e["name"] == "read"));
    assert_eq!(find("i", "migrate.tlb"), 1);
    // the validator rejects broken documents
    assert!(chrome::validate("{}").is_err());
    assert!(chrome::validate(r#"{"traceEvents":[{"name":"a","ph":"X","ts":1,"pid":1,"tid":1}]}"#).is_err());
    assert!(chrome::validate(r#"{"traceEvents":[{"name":"a","ph":"C","ts":1,"pid":1,"tid":1,"args":{"x":"no"}}]}"#).is_err());
    assert!(chrome::validate(r#"{"traceEvents":[{"name":"a","ph":"s","ts":1,"pid":1,"tid":1,"id":4}]}"#).is_err());
    assert!(chrome::validate(r#"{"traceEvents":[{"name":"a","ph":"i","ts":1,"pid":1,"tid":1,"s":"q"}]}"#).is_err());
    assert!(chrome::validate(r#"{"traceEvents":[{"name":"a","ph":"M","pid":1,"tid":1}]}"#).is_err());
}

#[test]
fn jsonl_is_one_valid_object_per_line_in_fixed_order() {
    let evs = sample();
    let mut b = Vec::new();
    jsonl::write_jsonl(&evs, &mut b).unwrap();
    let t = String::from_utf8(b).unwrap();
    assert_eq!(t.lines().count(), evs.len());
    for l in t.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["ts_ns"].is_u64() && v["frame"].is_u64() && v["event"].is_string(), "{l}");
        assert!(l.starts_with("{\"ts_ns\":"));
    }
    assert!(t.contains(r#"{"ts_ns":123456000,"frame":0,"event":"cma_alloc_start","name":"linux,cma","count":64,"align":6}"#));
    let viol = t.lines().find(|l| l.contains("\"violation\"")).unwrap();
    let v: serde_json::Value = serde_json::from_str(viol).unwrap();
    assert_eq!(v["violation"]["check"], "migrate.tlb");
    assert_eq!(v["violation"]["recent_events"].as_array().unwrap().len(), 1);
}

#[test]
fn writers_are_byte_identical_for_identical_input() {
    let run = || {
        let evs = sample();
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        jsonl::write_jsonl(&evs, &mut a).unwrap();
        chrome::write_chrome(&evs, &mut b).unwrap();
        ftrace::write_ftrace(&evs, &mut c).unwrap();
        (a, b, c, summary(&evs))
    };
    assert_eq!(run(), run());
}

#[test]
fn summary_tabulates_frames() {
    let s = summary(&sample());
    let lines: Vec<&str> = s.lines().collect();
    // frames 0 and 1 and a total; a blank line and the two allocations
    assert_eq!(lines.len(), 8, "{s}");
    assert_eq!(lines[4], "");
    assert!(lines[5].starts_with("alloc "), "{s}");
    let a1: Vec<&str> = lines[6].split_whitespace().collect();
    // no phase events: the whole latency is the bitmap's (an allocation the
    // bitmap refused, or one from a trace before phase events)
    assert_eq!(a1, ["1", "123456.000", "linux,cma", "64", "6", "543.000", "0", "0", "543.000", "0.000", "0.000", "0.000", "0.000", "0.000", "0.0", "0", "-"]);
    let a2: Vec<&str> = lines[7].split_whitespace().collect();
    assert_eq!(a2[..8], ["2", "200000.000", "BiscuitOS_CMA", "256", "8", "1000.000", "1", "1"]);
    assert_eq!(a2[14..], ["0.0", "0", "-"]);
    let f1: Vec<&str> = lines[2].split_whitespace().collect();
    // frame 1: 1 migration call, 0 pages copied (frame 0), 0 failed, 1 alloc, 0 failed, latency, 2 dma, bytes, 1 violation
    assert_eq!(f1[0], "1");
    assert_eq!(&f1[2..7], &["1", "0", "0", "1", "0"]);
    assert_eq!(f1[7], "1000.000/1000.000/1000.000");
    assert_eq!(&f1[8..], &["2", "2097152", "1"]);
    assert!(lines[3].starts_with(" total"));
}

#[test]
fn recent_events() {
    let mut r = RecentEvents::new(3);
    for e in sample() {
        r.push(&e);
    }
    let v = r.to_vec();
    assert_eq!(v.len(), 3);
    assert!(v[2].contains("ring_loss"));
}

/// What the ring keeps is exactly the last N events (each move with its
/// own VAs, held in place or on the heap), whatever the mix and the VA
/// lists' lengths.
#[test]
fn recent_events_keep_each_moves_own_vas() {
    let mut r = RecentEvents::new(4);
    let mut all = Vec::new();
    for i in 0..40u32 {
        let e = match i % 5 {
            0 | 3 => ev(i as u64, 0, EventKind::MigratePage { old_pfn: 0x1000 + i, new_pfn: 0x2000 + i, asid: i % 3, vas: (0..(i % 7)).map(|k| 0x40_0000 + i * 0x1000 + k).collect() }),
            1 => ev(i as u64, 0, EventKind::MigratePageBegin { old_pfn: 0x1000 + i, new_pfn: 0 }),
            2 => ev(i as u64, 1, EventKind::TlbFlush { scope: 1, asid: 1, va: i }),
            _ => ev(i as u64, 1, EventKind::Mark { label: format!("m{i}") }),
        };
        r.push(&e);
        all.push(e);
        let want: Vec<String> = all[all.len().saturating_sub(4)..].iter().map(jsonl::event_json).collect();
        assert_eq!(r.to_vec(), want, "after event {i}");
    }
}

/// Handing events over in batches (the owner keeps the newest ones and
/// asks with them) gives the same lines as pushing every event: for every
/// batch size, with violations that carry their own context (left out of
/// later contexts either way) and rings of every length.
#[test]
fn recent_events_in_batches_give_the_lines_of_every_event_pushed() {
    let cx = CheckCtx { frame: 0, at_ns: 0, recent: vec!["{\"inner\":1}".into()] };
    let all: Vec<Event> = (0..60u32)
        .map(|i| match i % 6 {
            0 => ev(i as u64, 0, EventKind::MigratePage { old_pfn: i, new_pfn: i + 1, asid: 1, vas: (0..i % 7).collect() }),
            1 => ev(i as u64, 0, EventKind::Violation(Box::new(cx.violation(Check::MigrateTlb, Some(i), None, None, format!("v{i}"))))),
            2 => ev(i as u64, 0, EventKind::Violation(Box::new(CheckCtx { frame: 0, at_ns: 0, recent: Vec::new() }.violation(Check::MigratePte, Some(i), None, None, format!("w{i}"))))),
            3 => ev(i as u64, 0, EventKind::MigratePageBegin { old_pfn: i, new_pfn: 0 }),
            4 => ev(i as u64, 1, EventKind::TlbFlush { scope: 1, asid: 1, va: i }),
            _ => ev(i as u64, 1, EventKind::Mark { label: format!("m{i}") }),
        })
        .collect();
    for cap in [0, 1, 3, 16] {
        for batch in [1, 2, 5, 17, 60] {
            let mut every = RecentEvents::new(cap);
            let mut batched = RecentEvents::new(cap);
            let mut handed = 0;
            for (i, e) in all.iter().enumerate() {
                every.push(e);
                let pending = &all[handed..=i];
                assert_eq!(batched.to_vec_with(pending), every.to_vec(), "cap {cap} batch {batch} event {i}");
                if pending.len() == batch {
                    batched.extend_from(pending);
                    handed = i + 1;
                    assert_eq!(batched.to_vec(), every.to_vec(), "cap {cap} batch {batch} event {i}");
                }
            }
            assert!(every.to_vec().iter().all(|l| !l.contains("inner")));
        }
    }
}

#[test]
fn map_draws_pageblocks_and_pages() {
    let mut g = SynthGuest::new(64);
    let cma = g.pb_pfn(8);
    let a = g.add_cma("linux,cma", cma, 4 << 10, 0);
    g.cma_alloc_at(a, cma, 64, DMA_DEV_CAMERA);
    g.commit();
    let s = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    let (w, h, px) = map_rgb(&s);
    assert_eq!(w, 512);
    assert_eq!(h, 16 + 4 + 32);
    let at = |x: u32, y: u32| -> [u8; 3] {
        let i = ((y * w + x) * 3) as usize;
        [px[i], px[i + 1], px[i + 2]]
    };
    assert_eq!(at(0, 0), map::MT_COLORS[0]);
    assert_eq!(at(16, 0), map::MT_COLORS[1]);
    assert_eq!(at(8 * 16 + 3, 3), map::MT_COLORS[4]);
    let y0 = 20;
    let page = |pfn: u32| at((pfn - s.base_pfn()) % 512, y0 + (pfn - s.base_pfn()) / 512);
    assert_eq!(page(s.base_pfn()), map::page_color::RESERVED);
    assert_eq!(page(cma), map::page_color::CMA_ALLOCATED);
    assert_eq!(page(cma + 64), map::page_color::FREE_CMA);
    assert_eq!(page(g.pb_pfn(3)), map::page_color::FREE);
    let dir = std::env::temp_dir().join(format!("cmaemu-map-{}.png", std::process::id()));
    map_png(&s, &dir).unwrap();
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&dir).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (w, h));
    assert_eq!(&buf[..info.buffer_size()], &px[..]);
    let _ = std::fs::remove_file(dir);
}

/// Issue 19: a map of 7,456,529+ pageblocks overflowed `w*h*4` in u32 (a
/// 2 KiB buffer, then an index panic); slightly smaller ones asked for ~4 GB.
#[test]
fn absurd_pageblock_maps_are_refused_not_drawn() {
    let line = |n: usize, ppb: u64| format!("{{\"ts_ns\":0,\"frame\":0,\"event\":\"pageblock_map\",\"first_pfn\":0,\"pageblock_pages\":{ppb},\"mts\":\"{}\"}}\n", "1".repeat(n));
    for (n, ppb) in [(7_456_544, 1), (7_456_528, 1), (framemap::MAX_MAP_PAGES as usize + 1, 1), (2, 1 << 31)] {
        let evs = read::read_jsonl(&line(n, ppb)).unwrap();
        let e = framemap::view_at(&evs, 0).unwrap_err().to_string();
        assert!(e.contains(&format!("({n} pageblocks), more than the 262144 of a 1 GiB board")), "{e}");
    }
    let layout = "{\"ts_ns\":0,\"frame\":0,\"event\":\"layout\",\"base_pfn\":0,\"nr_pages\":4000000000,\"pageblock_pages\":1,\"max_order\":1,\"zones\":[],\"cma_areas\":[]}\n";
    let e = framemap::view_at(&read::read_jsonl(layout).unwrap(), 0).unwrap_err().to_string();
    assert!(e.contains("covers 4000000000 pages"), "{e}");
    let v = framemap::view_at(&read::read_jsonl(&line(17, 1024)).unwrap(), 0).unwrap();
    let c = framemap::render(&v, false).unwrap();
    assert_eq!(c.rgba.len(), c.width as usize * c.height as usize * 4);
    assert!(c.rgba.chunks(4).filter(|p| p[..3] == map::MT_COLORS[1]).count() > 17 * 64 * 16 / 2, "17 movable cells");
}

/// Issue 19: sums of DMA lengths and latencies overflowed u64 (a panic with
/// overflow checks, wrong totals without).
#[test]
fn summary_totals_do_not_overflow() {
    let big = u64::MAX - 1;
    let evs = vec![
        ev(0, 0, EventKind::DmaTransfer { device: DMA_DEV_CAMERA, pa: 0, len: big, write: true, dur_ns: 0 }),
        ev(1, 1, EventKind::DmaTransfer { device: DMA_DEV_CAMERA, pa: 0, len: big, write: true, dur_ns: 0 }),
        ev(0, 1, EventKind::CmaAllocStart { name: "a".into(), count: 1, align: 0 }),
        ev(big, 1, EventKind::CmaAllocFinish { name: "a".into(), pfn: 1, page: 0, count: 1, align: 0, errorno: 0 }),
        ev(0, 1, EventKind::CmaAllocStart { name: "a".into(), count: 1, align: 0 }),
        ev(big, 1, EventKind::CmaAllocFinish { name: "a".into(), pfn: 1, page: 0, count: 1, align: 0, errorno: 0 }),
        ev(big, 1, EventKind::MigratePages { succeeded: 0, failed: u64::MAX, thp_succeeded: 0, thp_failed: 0, thp_split: 0, mode: 0, reason: 0 }),
        ev(big, 1, EventKind::MigratePages { succeeded: 0, failed: u64::MAX, thp_succeeded: 0, thp_failed: 0, thp_split: 0, mode: 0, reason: 0 }),
    ];
    let s = summary(&evs);
    let total: Vec<&str> = s.lines().find(|l| l.trim_start().starts_with("total")).unwrap().split_whitespace().collect();
    // total: migrations copied mfail allocs afail lat dma dma_bytes violations
    assert_eq!(total[3], (2 * u128::from(u64::MAX)).to_string(), "{s}");
    let lat = super::us(big);
    assert_eq!(total[6], format!("{lat}/{lat}/{lat}"), "{s}");
    assert_eq!(&total[7..], &["2", &(2 * u128::from(big)).to_string(), "0"], "{s}");
}

#[test]
fn allocation_table_names_errno_retries_and_causes() {
    let cause = |ts: u64, count: u64, retries: u32, last: bool, errorno: i32, cause: &str, pfn: Option<u32>| {
        ev(ts, 0, EventKind::CmaCause(Box::new(CmaCause { name: "reserved".into(), count, align: 0, retries, last, errorno, migrated: 0, cause: cause.into(), pfn, text: String::new() })))
    };
    let start = |ts: u64, count: u64| ev(ts, 0, EventKind::CmaAllocStart { name: "reserved".into(), count, align: 0 });
    let evs = vec![
        // larger than the area: no finish, the cause closes it
        start(1_000, 9_999),
        cause(1_000, 9_999, 0, true, -12, "too_large", None),
        // a busy retry at a pinned page, then a failure
        start(10_000, 4032),
        ev(11_000, 0, EventKind::MigratePages { succeeded: 4031, failed: 1, thp_succeeded: 0, thp_failed: 0, thp_split: 0, mode: 2, reason: 6 }),
        ev(12_000, 0, EventKind::CmaAllocBusyRetry { name: "reserved".into(), pfn: 0x6d040, page: 0, count: 4032, align: 0 }),
        cause(12_000, 4032, 1, false, -16, "pinned", Some(0x6d040)),
        ev(13_000, 0, EventKind::CmaAllocFinish { name: "reserved".into(), pfn: 0x6d040, page: 0, count: 4032, align: 0, errorno: -16 }),
        cause(13_000, 4032, 1, true, -16, "pinned", Some(0x6d040)),
        cause(13_000, 4032, 1, true, -16, "not_isolated", Some(0x6d000)),
    ];
    let rows = allocations(&evs);
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].end_ns, rows[0].errno, rows[0].causes.clone()), (Some(1_000), Some(-12), vec!["too_large".to_string()]));
    assert_eq!((rows[1].migrated, rows[1].retries, rows[1].errno), (4031, 1, Some(-16)));
    assert_eq!(rows[1].causes, vec!["pinned 0x6d040".to_string(), "not_isolated 0x6d000".to_string()]);
    let t = allocation_table(&evs);
    let l: Vec<&str> = t.lines().collect();
    assert!(l[1].ends_with("-12 ENOMEM  too_large"), "{t}");
    assert!(l[2].ends_with("-16 EBUSY  pinned 0x6d040 (+1 more)"), "{t}");
    assert!(l[2].contains(" 3.000 "), "latency start to finish: {t}");
}

#[test]
fn allocation_phases_add_up_to_the_latency_and_retried_tries_are_counted() {
    use super::summary::allocations;
    let name = || "linux,cma".to_string();
    let phase = |ts, phase| ev(ts, 0, EventKind::CmaAllocPhase { phase });
    let evs = vec![
        ev(1000, 0, EventKind::CmaAllocStart { name: name(), count: 64, align: 0 }),
        phase(1010, 1),
        phase(1030, 2),
        phase(1035, 3),
        ev(1100, 0, EventKind::MigratePages { succeeded: 3, failed: 0, thp_succeeded: 0, thp_failed: 0, thp_split: 0, mode: 2, reason: 6 }),
        phase(1100, 4),
        ev(1120, 0, EventKind::CmaAllocBusyRetry { name: name(), pfn: 0x6a000, page: 0, count: 64, align: 0 }),
        phase(1125, 1),
        phase(1130, 2),
        phase(1131, 3),
        phase(1140, 4),
        ev(1150, 0, EventKind::CmaAllocFinish { name: name(), pfn: 0x6a400, page: 0, count: 64, align: 0, errorno: 0 }),
    ];
    let a = allocations(&evs);
    assert_eq!(a.len(), 1);
    // bitmap 10 + 5, isolate 20 + 5, drain 5 + 1, migrate 65 + 9, finish 20 + 10
    assert_eq!(a[0].phase_ns, [15, 25, 6, 74, 30]);
    assert_eq!(a[0].phase_ns.iter().sum::<u64>(), 150);
    assert_eq!(a[0].retry_ns, 120);
    assert_eq!((a[0].retries, a[0].migrated, a[0].end_ns), (1, 3, Some(1150)));
}

#[test]
fn a_repeated_or_dropped_display_frame_names_the_operation_that_overlapped_it() {
    use super::summary::stutters;
    let show = |ts, number, cam| ev(ts, 0, EventKind::DisplayFrame { number, pa: 0, camera: Some(cam) });
    let evs = vec![
        show(100, 0, 0),
        show(200, 1, 1),
        ev(210, 0, EventKind::CmaAllocStart { name: "linux,cma".into(), count: 64, align: 0 }),
        ev(220, 0, EventKind::MigratePagesStart { mode: 2, reason: 6 }),
        ev(390, 0, EventKind::MigratePages { succeeded: 9, failed: 0, thp_succeeded: 0, thp_failed: 0, thp_split: 0, mode: 2, reason: 6 }),
        show(300, 2, 1),
        ev(395, 0, EventKind::CmaAllocFinish { name: "linux,cma".into(), pfn: 1, page: 0, count: 64, align: 0, errorno: 0 }),
        show(400, 3, 3),
        show(500, 4, 4),
    ];
    let s = stutters(&evs);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[0].number, s[0].dropped), (2, 0));
    assert_eq!(s[0].blame.as_deref(), Some("cma_alloc linux,cma 64 pages @0.210 us"), "the allocation, not its migration batch");
    assert_eq!((s[1].number, s[1].dropped), (3, 1));
    assert!(s[1].blame.as_deref().is_some_and(|b| b.starts_with("cma_alloc")));
}

/// A small deterministic generator: `next(m)` is in `0..m`.
fn xorshift(mut rng: u64) -> impl FnMut(u64) -> usize {
    move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % m) as usize
    }
}

#[test]
fn state_runs_in_ranges_match_whole_comparisons() {
    // state_runs_in (only where the codes may differ, copying them) against
    // state_runs over the whole array: the same runs, across range and
    // block (64 codes) boundaries, adjacent ranges and runs that continue
    // from one range into the next; the old codes become the new ones.
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut nonempty = 0;
    for round in 0..300 {
        let n = 1 + next(700);
        let old: Vec<u8> = (0..n).map(|_| next(3) as u8).collect();
        let mut new = old.clone();
        let mut ranges = Vec::new();
        let mut at = 0;
        while at < n {
            // every third round: ranges touching one another
            let start = at + if round % 3 == 0 { 0 } else { next(150) };
            let end = (start + 1 + next(200)).min(n);
            if start >= end {
                break;
            }
            for i in start..end {
                if next(2) == 0 {
                    new[i] = (old[i] + 1 + next(2) as u8) % 3;
                }
            }
            ranges.push(start..end);
            at = end;
        }
        let whole = state_runs(0x1000, &new, Some(&old));
        let mut inplace = old.clone();
        let runs = state_runs_in(0x1000, &ranges, &new, &mut inplace);
        assert_eq!(runs, whole, "round {round}: {ranges:?}");
        assert!(inplace == new, "round {round}: codes not copied");
        nonempty += !runs.is_empty() as usize;
    }
    assert!(nonempty > 250, "{nonempty} rounds with changes");
}

#[test]
fn runs_owed_over_several_prompts_match_one_comparison() {
    // The runs a frame owes, worked out step by step (each step: the codes
    // change inside some ranges; the owed runs lose those ranges' pages and
    // gain their pages that now differ from the codes last emitted) against
    // one comparison of the codes last emitted with the codes at the end:
    // the same runs, pages changed and changed back included.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut nonempty = 0;
    for round in 0..300 {
        let n = 1 + next(600);
        let last: Vec<u8> = (0..n).map(|_| next(3) as u8).collect();
        let mut now = last.clone();
        let mut owed: Vec<(u32, u32, u8)> = Vec::new();
        for _step in 0..1 + next(4) {
            let mut ranges = Vec::new();
            let mut at = next(50);
            while at < n {
                let end = (at + 1 + next(120)).min(n);
                for i in at..end {
                    if next(3) == 0 {
                        // often back to the code last emitted
                        now[i] = if next(2) == 0 { last[i] } else { next(3) as u8 };
                    }
                }
                ranges.push(at..end);
                at = end + if round % 4 == 0 { 0 } else { next(80) };
            }
            let fresh = state_runs_between(0x2000, &ranges, &now, &last);
            let kept = runs_outside(0x2000, &owed, &ranges);
            owed = merge_runs(&kept, &fresh);
        }
        let whole = state_runs(0x2000, &now, Some(&last));
        assert_eq!(owed, whole, "round {round}");
        nonempty += !owed.is_empty() as usize;
    }
    assert!(nonempty > 250, "{nonempty} rounds with changes");
}

/// An event stays small: the large, rare kinds are boxed (a migration storm
/// writes two events per page into the run's stream).
#[test]
fn events_stay_small() {
    assert!(std::mem::size_of::<Event>() <= 72, "{}", std::mem::size_of::<Event>());
}
