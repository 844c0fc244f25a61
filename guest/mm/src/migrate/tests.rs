//! Migration tests over a fake kernel ([`FakeEnv`]): page tables, a TLB and
//! frame contents kept in host maps.
use super::*;
use crate::buddy::tests::boot_full;
use crate::buddy::tests::SMALL;
use crate::rmap::RmapEntry;
use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::vec::Vec;

/// The kernel side as the tests see it.
#[derive(Default, Debug, Clone)]
pub(crate) struct FakeEnv {
    /// Present PTEs: (asid, va) → pfn.
    pub ptes: BTreeMap<(u16, u32), u32>,
    /// Cleared PTEs (migration entries): (asid, va) → pfn they mapped.
    pub migration: BTreeMap<(u16, u32), u32>,
    /// Cached translations: (asid, va) → pfn.
    pub tlb: BTreeMap<(u16, u32), u32>,
    /// Frame contents (one word stands for the 4 KiB).
    pub mem: BTreeMap<u32, u64>,
    /// Tracepoint lines.
    pub traces: Vec<String>,
    /// Log lines.
    pub log: Vec<String>,
    /// Calls, for ordering checks.
    pub calls: Vec<String>,
    /// Record calls.
    pub record: bool,
}

impl MigrateEnv for FakeEnv {
    fn clear_pte(&mut self, asid: u16, va: u32) -> Result<Pfn, PteError> {
        let pfn = self.ptes.remove(&(asid, va)).ok_or(PteError::NotPresent(asid, va))?;
        self.migration.insert((asid, va), pfn);
        if self.record {
            self.calls.push(format!("clear {asid} {va:#x} {pfn:#x}"));
        }
        Ok(Pfn(pfn))
    }
    fn set_pte(&mut self, asid: u16, va: u32, pfn: Pfn) {
        self.migration.remove(&(asid, va));
        self.ptes.insert((asid, va), pfn.0);
        if self.record {
            self.calls.push(format!("set {asid} {va:#x} {:#x}", pfn.0));
        }
    }
    fn flush_tlb_page(&mut self, asid: u16, va: u32) {
        self.tlb.remove(&(asid, va));
        if self.record {
            self.calls.push(format!("flush {asid} {va:#x}"));
        }
    }
    fn copy_highpage(&mut self, from: Pfn, to: Pfn) {
        match self.mem.get(&from.0).copied() {
            Some(v) => self.mem.insert(to.0, v),
            None => self.mem.remove(&to.0),
        };
        if self.record {
            self.calls.push(format!("copy {:#x} {:#x}", from.0, to.0));
        }
    }
    fn trace_mm_migrate_pages(&mut self, ev: &MigratePagesEvent) {
        self.traces.push(ev.to_string());
    }
    fn printk(&mut self, args: fmt::Arguments<'_>) {
        self.log.push(args.to_string());
    }
}

/// An allocator, a reverse map and a fake kernel.
pub(crate) struct World {
    pub pa: PageAlloc<'static>,
    pub rmap: Rmap<'static>,
    pub env: FakeEnv,
    pub faults: MigrateFaults,
}

pub(crate) const RAM: u32 = 0x60000;

impl World {
    /// SMALL profile (16-page pageblocks, 128-page max blocks), `nr_pages`
    /// of RAM, the pageblocks at `cma_blocks` activated as CMA.
    pub fn new(nr_pages: u32, cma_blocks: &[u32]) -> World {
        let pb = SMALL.pageblock_nr_pages();
        let reserved: Vec<(u32, u32)> = cma_blocks.iter().map(|&b| (b, b + pb)).collect();
        let pa = boot_full(SMALL, RAM, nr_pages, &reserved, Some(976 << 20), cma_blocks);
        let pool: &'static mut [RmapEntry] = Vec::leak(vec![RmapEntry::EMPTY; 4096]);
        World { pa, rmap: Rmap::new(pool), env: FakeEnv::default(), faults: MigrateFaults::NONE }
    }

    pub fn m(&mut self) -> Migrator<'_, 'static, 'static, FakeEnv> {
        Migrator { pa: &mut self.pa, rmap: &mut self.rmap, env: &mut self.env, faults: self.faults, bad_frees: 0 }
    }

    /// Makes the allocated page `pfn` (refcount 1) a user page mapped at
    /// `(asid, va)` holding `content`, on the LRU; the user touched it (TLB).
    pub fn map_at(&mut self, pfn: Pfn, asid: u16, va: u32, content: u64) {
        self.rmap.page_add_anon_rmap(&mut self.pa.mem, pfn, asid, va).unwrap();
        let p = self.pa.mem.page_mut(pfn).unwrap();
        p.flags |= PG_LRU;
        p.owner = OWNER_KIND_USER | asid as u32;
        self.env.ptes.insert((asid, va), pfn.0);
        self.env.tlb.insert((asid, va), pfn.0);
        self.env.mem.insert(pfn.0, content);
    }

    /// A fresh user page (`GFP_HIGHUSER_MOVABLE`).
    pub fn map_new(&mut self, asid: u16, va: u32, content: u64) -> Pfn {
        let pfn = self.pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
        self.map_at(pfn, asid, va, content);
        pfn
    }

    /// Maps `pfn` a second time (fork-style sharing: `get_page` + rmap).
    pub fn share(&mut self, pfn: Pfn, asid: u16, va: u32) {
        self.pa.mem.page_mut(pfn).unwrap().refcount += 1;
        self.rmap.page_add_anon_rmap(&mut self.pa.mem, pfn, asid, va).unwrap();
        self.env.ptes.insert((asid, va), pfn.0);
        self.env.tlb.insert((asid, va), pfn.0);
    }

    /// A long-term pin (`pin_user_pages`: one more reference).
    pub fn pin(&mut self, pfn: Pfn) {
        self.pa.mem.page_mut(pfn).unwrap().refcount += 1;
    }

    /// Every invariant: buddy lists/counters, reverse map vs mapcount, page
    /// tables vs reverse map (for present entries).
    pub fn check(&self) {
        self.pa.check_integrity().unwrap();
        let mut seen = vec![0u32; 4096 / 32];
        self.rmap.check_integrity(&self.pa.mem, &mut seen).unwrap();
        for (i, p) in self.pa.mem.records().iter().enumerate() {
            let pfn = Pfn(self.pa.mem.base_pfn().0 + i as u32);
            for e in self.rmap.for_each_mapping(&self.pa.mem, pfn) {
                if e.present() {
                    assert_eq!(self.env.ptes.get(&(e.asid, e.va)), Some(&pfn.0), "pte of {:?} at pfn {:#x}", e, pfn.0);
                }
            }
            if p.mapcount >= 0 {
                assert!(p.refcount > p.mapcount, "pfn {:#x} refcount below mappings", pfn.0);
            }
        }
    }
}

fn isolate_one(w: &mut World, pfn: Pfn) -> MigrateList {
    let mut l = MigrateList::new();
    let next = w.m().isolate_migratepages_block(&mut l, pfn, Pfn(pfn.0 + 1));
    assert_eq!(next, Pfn(pfn.0 + 1));
    l
}

#[test]
fn migrate_one_shared_page_rewrites_every_pte_in_linux_order() {
    let mut w = World::new(512, &[]);
    let old = w.map_new(1, 0x1000, 0xdead);
    w.share(old, 2, 0x7000);
    let mut l = isolate_one(&mut w, old);
    assert_eq!(l.len(), 1);
    assert_eq!(w.pa.mem.page(old).unwrap().refcount, 3);
    w.env.record = true;
    let mut st = MigrateStats::default();
    let r = w.m().migrate_pages(&mut l, GFP_HIGHUSER_MOVABLE, MigrateMode::Sync, MigrateReason::ContigRange, &mut st);
    assert_eq!(r, Ok(0));
    assert_eq!(st, MigrateStats { nr_succeeded: 1, nr_failed_pages: 0, nr_failed: 0 });
    assert!(l.is_empty());
    let new = Pfn(w.env.ptes[&(1, 0x1000)]);
    assert_ne!(new, old);
    assert_eq!(w.env.ptes[&(2, 0x7000)], new.0);
    assert_eq!(w.env.mem[&new.0], 0xdead);
    assert!(w.env.tlb.is_empty(), "both TLB entries flushed");
    // Linux's order: clear+flush each PTE, copy, set each PTE.
    let kinds: Vec<&str> = w.env.calls.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(kinds, ["clear", "flush", "clear", "flush", "copy", "set", "set"]);
    let n = *w.pa.mem.page(new).unwrap();
    assert_eq!((n.refcount, n.mapcount, n.owner), (2, 1, OWNER_KIND_USER | 1));
    assert!(n.has(PG_LRU) && n.has(PG_ANON));
    assert!(w.pa.page_buddy(old) || w.pa.mem.page(old).unwrap().refcount == 0);
    assert_eq!((w.pa.events.pgmigrate_success, w.pa.events.pgmigrate_fail), (1, 0));
    assert_eq!(
        w.env.traces,
        ["nr_succeeded=1 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_SYNC reason=contig_range"]
    );
    w.check();
}

#[test]
fn pinned_page_not_isolated_and_eagain_if_pinned_later() {
    let mut w = World::new(512, &[]);
    let pinned = w.map_new(1, 0x1000, 7);
    w.pin(pinned);
    let mut l = MigrateList::new();
    w.m().isolate_migratepages_block(&mut l, pinned, Pfn(pinned.0 + 1));
    assert!(l.is_empty(), "a pinned anonymous page is not isolated");
    // Pinned after isolation: 10 passes of -EAGAIN, each one unmapping
    // and restoring the PTE; then the page is a failure left on the list.
    let late = w.map_new(1, 0x2000, 8);
    let mut l = isolate_one(&mut w, late);
    w.pin(late);
    let mut st = MigrateStats::default();
    let free_before = w.pa.nr_free_pages();
    let r = w.m().migrate_pages(&mut l, GFP_HIGHUSER_MOVABLE, MigrateMode::Sync, MigrateReason::ContigRange, &mut st);
    assert_eq!(r, Ok(1));
    assert_eq!(st, MigrateStats { nr_succeeded: 0, nr_failed_pages: 1, nr_failed: 1 });
    assert_eq!(l.as_slice(), [late.0]);
    assert_eq!(w.pa.nr_free_pages(), free_before, "targets given back");
    assert_eq!(w.env.ptes[&(1, 0x2000)], late.0);
    w.m().putback_movable_pages(&mut l);
    let p = *w.pa.mem.page(late).unwrap();
    assert_eq!((p.refcount, p.mapcount, p.has(PG_LRU)), (2, 0, true));
    assert_eq!(w.pa.events.pgmigrate_fail, 1);
    w.check();
}

#[test]
fn no_target_is_enomem_and_stops() {
    let mut w = World::new(512, &[]);
    let a = w.map_new(1, 0x1000, 1);
    let b = w.map_new(1, 0x2000, 2);
    let mut l = MigrateList::new();
    w.m().isolate_migratepages_block(&mut l, Pfn(RAM), Pfn(RAM + 512));
    assert_eq!(l.len(), 2);
    // Exhaust memory with unmovable allocations.
    while w.pa.__alloc_pages(crate::gfp::GFP_ATOMIC, 0).is_ok() {}
    let mut st = MigrateStats::default();
    let r = w.m().migrate_pages(&mut l, GFP_HIGHUSER_MOVABLE, MigrateMode::Sync, MigrateReason::ContigRange, &mut st);
    assert_eq!(r, Err(Errno::ENOMEM));
    assert_eq!((st.nr_succeeded, st.nr_failed_pages), (0, 1));
    assert_eq!(l.len(), 2);
    w.m().putback_movable_pages(&mut l);
    assert_eq!(w.env.ptes[&(1, 0x1000)], a.0);
    assert_eq!(w.env.ptes[&(1, 0x2000)], b.0);
    w.check();
}

#[test]
fn locked_page_retries_all_ten_passes() {
    let mut w = World::new(512, &[]);
    let a = w.map_new(1, 0x1000, 1);
    let mut l = isolate_one(&mut w, a);
    w.pa.mem.page_mut(a).unwrap().flags |= PG_LOCKED;
    let mut st = MigrateStats::default();
    let pgfree_before = w.pa.events.pgfree;
    let r = w.m().migrate_pages(&mut l, GFP_HIGHUSER_MOVABLE, MigrateMode::Sync, MigrateReason::Compaction, &mut st);
    assert_eq!(r, Ok(1));
    // One target allocated and freed per pass: 10 passes.
    assert_eq!(w.pa.events.pgfree - pgfree_before, 10);
    assert_eq!(st, MigrateStats { nr_succeeded: 0, nr_failed_pages: 1, nr_failed: 1 });
    w.pa.mem.page_mut(a).unwrap().flags &= !PG_LOCKED;
    w.m().putback_movable_pages(&mut l);
    w.check();
}

#[test]
fn fault_flag_names_roundtrip() {
    for n in ["skip_tlb_flush", "skip_copy", "skip_remap", "leak_old_page", "ignore_pin", "skip_lru_drain", "skip_pcp_drain"] {
        let f = MigrateFaults::from_name(n).unwrap();
        assert_eq!(f.names().collect::<Vec<_>>(), [n]);
        assert!(MigrateFaults::ALL.contains(f));
    }
    assert!(!MigrateFaults::NONE.contains(MigrateFaults::NONE));
}

mod migrate_list_model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Push(u32),
        Remove(usize),
        SpliceFrom(Vec<u32>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u32>().prop_map(Op::Push),
            3 => (0usize..40).prop_map(Op::Remove),
            1 => proptest::collection::vec(any::<u32>(), 0..40).prop_map(Op::SpliceFrom),
        ]
    }

    proptest! {
        /// The ring-headed list behaves as a bounded Vec: push refuses when
        /// full, remove keeps order, splice moves what fits.
        #[test]
        fn migrate_list_matches_a_bounded_vec(ops in proptest::collection::vec(op(), 0..200)) {
            let mut l = MigrateList::new();
            let mut v: Vec<u32> = Vec::new();
            for o in ops {
                match o {
                    Op::Push(p) => {
                        let fits = v.len() < COMPACT_CLUSTER_MAX;
                        prop_assert_eq!(l.push(Pfn(p)), fits);
                        if fits { v.push(p); }
                    }
                    Op::Remove(i) => {
                        if i < v.len() {
                            prop_assert_eq!(l.remove(i).0, v.remove(i));
                        }
                    }
                    Op::SpliceFrom(src) => {
                        let mut other = MigrateList::new();
                        let src: Vec<u32> = src.into_iter().take(COMPACT_CLUSTER_MAX).collect();
                        for p in &src { other.push(Pfn(*p)); }
                        l.splice(&mut other);
                        let room = COMPACT_CLUSTER_MAX - v.len();
                        let moved = src.len().min(room);
                        v.extend_from_slice(&src[..moved]);
                        prop_assert_eq!(other.as_slice(), &src[moved..]);
                    }
                }
                prop_assert_eq!(l.as_slice(), &v[..]);
                prop_assert_eq!(l.len(), v.len());
                prop_assert_eq!(l.is_empty(), v.is_empty());
                for (i, p) in v.iter().enumerate() {
                    prop_assert_eq!(l.get(i), Some(Pfn(*p)));
                }
                prop_assert_eq!(l.get(v.len()), None);
            }
        }
    }
}
