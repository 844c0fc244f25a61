//! End to end over synthetic guest memory: the guest side writes a
//! descriptor, page records, CMA bitmaps, page tables and trace records into
//! a `GuestRam` with the ABI types; the host side reads a snapshot, drains
//! the ring, runs the verifiers, writes all three trace formats twice and
//! compares the bytes, and decodes the map PNG.
use cmaemu::introspect::synth::SynthGuest;
use cmaemu::introspect::{RingDrainer, Snapshot};
use cmaemu::trace::{self, chrome, ftrace, jsonl, Decoder, Event, EventKind, RecentEvents};
use cmaemu::verify::{self, Check, CheckCtx, DmaBuffers, DmaTransfer, MigrationInput};
use cmaemu_abi::desc::{DMA_DEV_CAMERA, DMA_DEV_CLCD};
use cmaemu_abi::trace::{TraceRecord, MIGRATE_SYNC, MR_CONTIG_RANGE, TLB_PAGE};

const VA: u32 = 0x0040_0000;
const FRAME_NS: u64 = 16_666_667;

struct Outcome {
    events: Vec<Event>,
    violations: Vec<verify::Violation>,
    png: Vec<u8>,
}

/// One scenario: frame 0 boots and the camera gets its buffer (a user page
/// in the CMA range is migrated out first); frame 1 the camera writes and
/// the display reads; `skip_tlb_flush` makes the CPU keep the old
/// translation.
fn scenario(skip_tlb_flush: bool) -> Outcome {
    let mut g = SynthGuest::new(64);
    let cma_base = g.pb_pfn(8);
    let area = g.add_cma("linux,cma", cma_base, 4 << 10, 0);
    g.add_space(1);
    let old = cma_base + 10;
    let new = g.pb_pfn(3) + 1;
    g.user_page(1, VA, old);
    g.fill(old, 42);
    g.commit();

    let desc = Snapshot::read_desc(&g.ram, g.desc_pa).unwrap();
    let mut drainer = RingDrainer::new(&g.ram, &desc).unwrap();
    let snap0 = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    let mut decoder = Decoder::new(snap0.area_names());
    let mut events = vec![Event { ts_ns: 0, frame: 0, kind: EventKind::Frame { index: 0 } }, Event { ts_ns: 0, frame: 0, kind: EventKind::Counters(Box::new(snap0.counters())) }];
    let mut bufs = DmaBuffers::default();
    let mut recent = RecentEvents::new(8);
    let mut violations = Vec::new();
    let mut records = Vec::new();

    // --- guest: cma_alloc(64 pages) for the camera, migrating the user page.
    let t = 1_000_000;
    g.push(&TraceRecord::cma_alloc_start(t, area as u8, 64, 6));
    g.mm_seq = 1; // the guest is inside mm code
    g.commit();
    g.push(&TraceRecord::mm_migrate_pages_start(t + 100, MIGRATE_SYNC, MR_CONTIG_RANGE));
    g.push(&TraceRecord::migrate_page_begin(t + 200, old, new, Some((1, VA))));
    // doorbell: the host drains now and captures the old frame
    drainer.drain(&g.ram, &mut records).unwrap();
    let before = g.frame(old);
    g.move_user_page(1, VA, old, new, true);
    if !skip_tlb_flush {
        g.push(&TraceRecord::tlb_flush(t + 250, TLB_PAGE, 1, VA));
    }
    TraceRecord::migrate_page_records(t + 300, old, new, 1, &[VA], |r| {
        g.push(&r);
    });
    g.push(&TraceRecord::mm_migrate_pages(t + 400, 1, 0, 0, 0, 0, MIGRATE_SYNC, MR_CONTIG_RANGE));
    g.cma_alloc_at(area, cma_base, 64, DMA_DEV_CAMERA);
    g.mm_seq = 2;
    g.commit();
    g.push(&TraceRecord::cma_alloc_finish(t + 50_000, area as u8, cma_base as u64, 0xc0d0_0000, 64, 6, 0));
    g.push(&TraceRecord::dma_alloc(t + 50_100, DMA_DEV_CAMERA, cma_base as u64, 64, 6, 0, area as u8));

    // --- host: drain, decode, verify the migration.
    drainer.drain(&g.ram, &mut records).unwrap();
    let snap = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    assert!(snap.stable);
    for r in records.drain(..) {
        let mut evs = Vec::new();
        decoder.push(&r, 0, &mut evs);
        if let Ok(ge) = r.decode() {
            bufs.on_event(&ge);
        }
        for e in evs {
            recent.push(&e);
            if let EventKind::MigratePage { old_pfn, new_pfn, asid, vas } = &e.kind {
                let after = g.frame(*new_pfn);
                // what the CPU glue reports as its cached translation of VA
                let cached = if skip_tlb_flush { (*old_pfn as u64) << 12 } else { (*new_pfn as u64) << 12 };
                let m = MigrationInput { old_pfn: *old_pfn, new_pfn: *new_pfn, asid: *asid, vas, before: &before, after: &after, cached: &[Some(cached)] };
                let ctx = CheckCtx { frame: 0, at_ns: e.ts_ns, recent: recent.to_vec() };
                violations.extend(verify::check_migration(&snap, &g.ram, &m, &ctx));
            }
            events.push(e);
        }
    }
    decoder.flush(&mut events);
    let ctx = CheckCtx { frame: 0, at_ns: t + 60_000, recent: recent.to_vec() };
    violations.extend(verify::check_integrity(&snap, &ctx));

    // --- frame 1: camera writes its buffer, display scans it out.
    let f1 = FRAME_NS;
    events.push(Event { ts_ns: f1, frame: 1, kind: EventKind::Frame { index: 1 } });
    events.push(Event { ts_ns: f1, frame: 1, kind: EventKind::Counters(Box::new(snap.counters())) });
    for (k, (dev, write)) in [(DMA_DEV_CAMERA, true), (DMA_DEV_CLCD, false)].into_iter().enumerate() {
        let tr = DmaTransfer { device: dev, pa: (cma_base as u64) << 12, len: 64 * 4096, write };
        let at = f1 + 1000 + k as u64 * 10_000;
        let ctx = CheckCtx { frame: 1, at_ns: at, recent: recent.to_vec() };
        violations.extend(verify::check_dma(&snap, Some(&bufs), &tr, &ctx));
        events.push(Event { ts_ns: at, frame: 1, kind: EventKind::DmaTransfer { device: dev, pa: tr.pa, len: tr.len, write, dur_ns: 5000 } });
    }
    for v in &violations {
        events.push(Event { ts_ns: v.at_ns, frame: v.frame, kind: EventKind::Violation(Box::new(v.clone())) });
    }
    let dir = std::env::temp_dir().join(format!("cmaemu-tv-{}-{}.png", std::process::id(), skip_tlb_flush));
    trace::map_png(&snap, &dir).unwrap();
    let png = std::fs::read(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    Outcome { events, violations, png }
}

fn render(events: &[Event]) -> (Vec<u8>, Vec<u8>, Vec<u8>, String) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    jsonl::write_jsonl(events, &mut a).unwrap();
    chrome::write_chrome(events, &mut b).unwrap();
    ftrace::write_ftrace(events, &mut c).unwrap();
    (a, b, c, trace::summary(events))
}

#[test]
fn clean_run_verifies_and_traces_deterministically() {
    let o = scenario(false);
    // the display reads the camera's buffer (zero-copy preview): shared
    // reads are fine, so a clean run has no findings.
    assert_eq!(o.violations, vec![]);
    let r1 = render(&o.events);
    let r2 = render(&scenario(false).events);
    assert_eq!(r1, r2, "identical runs must give identical bytes");
    assert_eq!(o.png, scenario(false).png);

    let n = chrome::validate(std::str::from_utf8(&r1.1).unwrap()).unwrap();
    assert!(n >= 15);
    assert!(o.events.iter().any(|e| matches!(e.kind, EventKind::MigratePage { .. })));
    let ft = String::from_utf8(r1.2.clone()).unwrap();
    assert!(ft.contains(": cma_alloc_start: name=linux,cma count=64 align=6\n"), "{ft}");
    assert!(ft.contains(": mm_migrate_pages: nr_succeeded=1 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_SYNC reason=contig_range\n"));
    assert_eq!(String::from_utf8(r1.0).unwrap().lines().count(), o.events.len());
    // the per-frame table (the per-allocation table follows after a blank line)
    assert!(r1.3.lines().take_while(|l| !l.trim().is_empty()).count() == 4, "{}", r1.3);

    let dec = png::Decoder::new(std::io::Cursor::new(o.png));
    let mut rd = dec.read_info().unwrap();
    let mut buf = vec![0; rd.output_buffer_size()];
    let info = rd.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, 512);
    assert_eq!(info.height, 16 + 4 + 32);
}

#[test]
fn skip_tlb_flush_run_reports_the_stale_translation() {
    let o = scenario(true);
    let tlb: Vec<_> = o.violations.iter().filter(|v| v.check == Check::MigrateTlb).collect();
    assert_eq!(tlb.len(), 1, "{:#?}", o.violations);
    assert_eq!(tlb[0].va, Some(VA));
    assert!(!tlb[0].recent_events.is_empty());
    let (_, chrome_doc, ft, summary) = render(&o.events);
    chrome::validate(std::str::from_utf8(&chrome_doc).unwrap()).unwrap();
    assert!(String::from_utf8(ft).unwrap().contains("cmaemu_violation: check=migrate.tlb"));
    let f0: Vec<&str> = summary.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(f0.last(), Some(&"1"), "{summary}");
}

/// The verification session (`instrument::Session`) over the same kind of guest: doorbell
/// The CPU as the monitor sees it: address space 1 runs, and the guest
/// never invalidates a TLB entry (it skipped its flush: the monitor is
/// told of no TLB maintenance).
#[derive(Default)]
struct StaleTlb {
    retained: Vec<(u32, u32, u64)>,
}

impl cmaemu::instrument::TlbAccess for StaleTlb {
    fn current_asid(&mut self) -> Option<u32> {
        Some(1)
    }
    fn retain(&mut self, asid: u32, va: u32, pa: u64) -> bool {
        self.retained.push((asid, va, pa));
        true
    }
}

/// after `migrate_page_begin` and after the move, a DMA transfer after the
/// buffer was freed, frame boundaries.
#[test]
fn monitor_drives_the_whole_pipeline() {
    let mut g = SynthGuest::new(64);
    let cma_base = g.pb_pfn(8);
    let area = g.add_cma("linux,cma", cma_base, 4 << 10, 0);
    g.add_space(1);
    let (old, new) = (cma_base + 3, g.pb_pfn(2) + 9);
    g.user_page(1, VA, old);
    g.fill(old, 7);
    g.commit();
    let mut mon = cmaemu::instrument::Session::attach(&g.ram, g.desc_pa).unwrap();
    // the CPU glue's view: a TLB that nothing empties (skip_tlb_flush); it
    // holds nothing until the monitor retains the old translation at
    // migrate_page_begin
    let mut cached = StaleTlb::default();

    g.push(&TraceRecord::cma_alloc_start(10, area as u8, 16, 4));
    g.push(&TraceRecord::migrate_page_begin(20, old, new, Some((1, VA))));
    mon.service(&g.ram, 20, &mut cached).unwrap(); // doorbell
    // held from the next doorbell on, when no invalidate covered it by then
    assert!(cached.retained.is_empty(), "held before the guest could invalidate it: {:?}", cached.retained);
    g.move_user_page(1, VA, old, new, false); // and skip the copy too
    g.push(&TraceRecord::migrate_page(30, old, new, 1, 1, 0, &[VA]));
    g.cma_alloc_at(area, cma_base, 16, DMA_DEV_CAMERA);
    g.commit();
    g.push(&TraceRecord::cma_alloc_finish(40, area as u8, cma_base as u64, 0, 16, 4, 0));
    g.push(&TraceRecord::dma_alloc(41, DMA_DEV_CAMERA, cma_base as u64, 16, 4, 0, area as u8));
    mon.service(&g.ram, 42, &mut cached).unwrap(); // doorbell
    assert_eq!(cached.retained, vec![(1, VA, (old as u64) << 12)], "the old translation, not invalidated since migrate_page_begin, was not held at the next doorbell");
    mon.frame_boundary(&g.ram, 1, FRAME_NS, &mut cached, false).unwrap();
    let tr = DmaTransfer { device: DMA_DEV_CAMERA, pa: (cma_base as u64) << 12, len: 16 * 4096, write: true };
    mon.dma(&g.ram, tr, FRAME_NS + 10, 100).unwrap();
    // dma_after_free: the guest frees the buffer, the camera keeps writing
    g.cma_release(area, cma_base, 16);
    g.commit();
    g.push(&TraceRecord::dma_free(FRAME_NS + 20, DMA_DEV_CAMERA, cma_base as u64, 16));
    mon.service(&g.ram, FRAME_NS + 21, &mut cached).unwrap();
    mon.dma(&g.ram, tr, FRAME_NS + 30, 100).unwrap();
    mon.finish();
    let evs = mon.take_events();
    let checks: Vec<(Check, Option<u32>)> = evs
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Violation(v) => Some((v.check, v.pfn)),
            _ => None,
        })
        .collect();
    assert!(checks.contains(&(Check::MigrateContent, Some(new))), "{checks:?}");
    assert!(checks.contains(&(Check::MigrateTlb, Some(old))), "{checks:?}");
    assert!(checks.contains(&(Check::DmaContiguity, Some(cma_base))), "{checks:?}");
    assert!(checks.contains(&(Check::DmaOwnership, Some(cma_base))), "{checks:?}");
    assert_eq!(checks.len(), 4, "{checks:?}");
    let mut doc = Vec::new();
    chrome::write_chrome(&evs, &mut doc).unwrap();
    chrome::validate(std::str::from_utf8(&doc).unwrap()).unwrap();
}

/// A migrating page's old translation that the guest invalidates (by VA,
/// or the whole TLB) before the next doorbell is not held in the TLB; one
/// it invalidates elsewhere is.
#[test]
fn a_translation_the_guest_invalidates_is_not_held() {
    use cmaemu::cpu::TlbOp;
    for (op, held) in [(Some(TlbOp::Va { va: VA, asid: 1 }), false), (Some(TlbOp::All), false), (Some(TlbOp::Va { va: VA + 0x1000, asid: 1 }), true), (None, true)] {
        let mut g = SynthGuest::new(64);
        let cma_base = g.pb_pfn(8);
        g.add_cma("linux,cma", cma_base, 4 << 10, 0);
        g.add_space(1);
        let (old, new) = (cma_base + 3, g.pb_pfn(2) + 9);
        g.user_page(1, VA, old);
        g.commit();
        let mut mon = cmaemu::instrument::Session::attach(&g.ram, g.desc_pa).unwrap();
        let mut cached = StaleTlb::default();
        g.push(&TraceRecord::migrate_page_begin(20, old, new, Some((1, VA))));
        mon.service(&g.ram, 20, &mut cached).unwrap();
        g.move_user_page(1, VA, old, new, true);
        g.commit();
        if let Some(op) = op {
            mon.tlb_maintenance(&g.ram, op);
        }
        g.push(&TraceRecord::migrate_page(30, old, new, 1, 1, 0, &[VA]));
        mon.service(&g.ram, 40, &mut cached).unwrap();
        let want = if held { vec![(1, VA, (old as u64) << 12)] } else { Vec::new() };
        assert_eq!(cached.retained, want, "{op:?}");
    }
}

/// At the shell's prompt the session re-reads what the command wrote even
/// when it pushed no record (RAM's dirty log knows), so that the next
/// command's first check does not pay for it: after `settle` the snapshot
/// equals a fresh read, before it the stale one differs.
#[test]
fn settling_at_the_prompt_reads_what_a_command_wrote_without_records() {
    let mut g = SynthGuest::new(64);
    let cma_base = g.pb_pfn(8);
    g.add_cma("linux,cma", cma_base, 4 << 10, 0);
    g.add_space(1);
    g.commit();
    let mut mon = cmaemu::instrument::Session::attach(&g.ram, g.desc_pa).unwrap();
    mon.settle(&g.ram).unwrap();
    // a command allocates user pages (page records written, no record
    // pushed: `fill` traces nothing)
    for (i, pfn) in (g.pb_pfn(2)..g.pb_pfn(2) + 40).enumerate() {
        g.user_page(1, VA + (i as u32) * 4096, pfn);
    }
    g.commit();
    let fresh = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    assert_ne!(mon.last_snapshot().pages, fresh.pages, "the command changed page records");
    mon.settle(&g.ram).unwrap();
    let s = mon.last_snapshot();
    assert_eq!(s.pages, fresh.pages, "settled page records");
    let frees = |s: &Snapshot| (s.base_pfn()..s.base_pfn() + s.pages.len() as u32).filter(|&p| s.is_free(p)).count();
    assert_eq!(frees(s), frees(&fresh), "settled free map");
    assert_eq!(s.counters(), fresh.counters(), "settled counters");
}

/// A session's frames carry the page states as what changed since the
/// last frame, the work done at the prompts in between (the codes now
/// kept up to date there): applied in order, the frame events' runs are
/// a fresh read's codes at every frame, over random record rewrites,
/// buddy blocks, CMA bitmap bits, prompts and frames in any order.
#[test]
fn frame_page_states_match_fresh_codes_with_prompts_between() {
    use cmaemu_abi::page::{PageRecord, OWNER_KIND_DEVICE, OWNER_KIND_KERNEL, OWNER_KIND_PGTABLE, OWNER_KIND_USER, OWNER_NONE, PG_ANON, PG_BUDDY, PG_LRU, PG_RESERVED};
    let mut g = SynthGuest::new(64);
    let cma_base = g.pb_pfn(8);
    let area = g.add_cma("linux,cma", cma_base, 4 << 10, 0);
    g.add_space(1);
    g.commit();
    let mut mon = cmaemu::instrument::Session::attach(&g.ram, g.desc_pa).unwrap();
    let mut tlb = || Some(1u32);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |m: u32| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % m as u64) as u32
    };
    let base = g.base_pfn;
    // the page states as the frame events say, applied in order
    let mut emitted: Vec<u8> = Vec::new();
    let (mut prompts, mut prompts_then_frame, mut changes) = (0, 0, 0);
    let mut prompted = false;
    let bits_to_ram = |g: &SynthGuest| {
        let a = &g.areas[area];
        for (j, w) in a.bitmap.iter().enumerate() {
            g.ram.write_u32(a.bitmap_pa + 4 * j as u64, *w).unwrap();
        }
    };
    let mut frame = |mon: &mut cmaemu::instrument::Session, g: &SynthGuest, index: u64, emitted: &mut Vec<u8>| {
        mon.frame_boundary(&g.ram, index, index * FRAME_NS, &mut tlb, false).unwrap();
        for e in mon.take_events() {
            if let EventKind::PageStates { full, runs } = e.kind {
                if full {
                    emitted.clear();
                }
                for (pfn, k, c) in runs {
                    let i = (pfn - base) as usize;
                    if emitted.len() < i + k as usize {
                        emitted.resize(i + k as usize, 0xff);
                    }
                    emitted[i..i + k as usize].fill(c);
                }
            }
        }
        let fresh = Snapshot::read(&g.ram, g.desc_pa).unwrap().page_state_codes();
        assert!(*emitted == fresh, "frame {index}: the emitted page states are not a fresh read's");
    };
    // first, a page whose code follows its CMA bit alone, changed at a
    // frame without a prompt before it: a user page, then the kernel's
    // with its bit cleared (frame 2), then its bit set again (a prompt,
    // frame 3: the codes now must have followed frame 2's change)
    let p = cma_base + 400;
    g.set_bits(area, p, 1, true);
    bits_to_ram(&g);
    g.write_page(p, &PageRecord { flags: PG_LRU | PG_ANON, owner: OWNER_KIND_USER | 1, ..PageRecord::INIT });
    mon.settle(&g.ram).unwrap();
    frame(&mut mon, &g, 1, &mut emitted);
    g.write_page(p, &PageRecord { owner: OWNER_KIND_KERNEL, ..PageRecord::INIT });
    g.set_bits(area, p, 1, false);
    bits_to_ram(&g);
    frame(&mut mon, &g, 2, &mut emitted);
    g.set_bits(area, p, 1, true);
    bits_to_ram(&g);
    mon.settle(&g.ram).unwrap();
    frame(&mut mon, &g, 3, &mut emitted);
    let mut frames = 3u64;
    for round in 0..400 {
        for _ in 0..next(4) {
            // a few records in one of two regions: ordinary pages and the
            // CMA area (whose bitmap decides some codes)
            let first = [g.pb_pfn(2), cma_base][next(2) as usize] + next(256);
            let rec = match next(8) {
                0 => PageRecord { flags: PG_LRU | PG_ANON, owner: OWNER_KIND_USER | 1, ..PageRecord::INIT },
                1 => PageRecord { owner: OWNER_KIND_KERNEL, ..PageRecord::INIT },
                2 => PageRecord { flags: PG_RESERVED, owner: OWNER_KIND_KERNEL, ..PageRecord::INIT },
                3 => PageRecord { owner: OWNER_KIND_DEVICE | DMA_DEV_CAMERA, ..PageRecord::INIT },
                4 => PageRecord { owner: OWNER_KIND_PGTABLE | 1, ..PageRecord::INIT },
                // a free block head of order 0-2 (its pages free)
                5 => PageRecord { flags: PG_BUDDY, private: next(3), refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
                _ => PageRecord { refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
            };
            for pfn in first..first + 1 + next(3) {
                g.write_page(pfn, &rec);
            }
            changes += 1;
        }
        if next(3) == 0 {
            // CMA bitmap bits, written alone (no page record changes)
            let at = cma_base + next(256);
            g.set_bits(area, at, 1 + next(8), next(2) == 0);
            bits_to_ram(&g);
        }
        if round % 50 == 49 {
            // everything rewritten as committed (the whole array changes)
            g.commit();
        }
        match next(3) {
            0 => {
                mon.settle(&g.ram).unwrap();
                prompts += 1;
                prompted = true;
            }
            1 => {
                frames += 1;
                frame(&mut mon, &g, frames, &mut emitted);
                prompts_then_frame += prompted as u32;
                prompted = false;
            }
            _ => {}
        }
    }
    assert!(frames > 100 && prompts > 100 && prompts_then_frame > 50 && changes > 400, "{frames} frames, {prompts} prompts, {prompts_then_frame} frames after prompts, {changes} changes");
}
