//! A synthetic guest: builds, in a [`GuestRam`], a consistent mm state laid
//! out exactly as the ABI says the real guest must (descriptor, page array,
//! pageblock bitmap, zone summary with buddy free lists, CMA areas and
//! bitmaps, an address space with ARMv7 page tables, a trace ring). Tests
//! and benchmarks use it to drive introspection and the verifiers without
//! booting the guest; it is also a reference for what the guest writes.
use crate::memory::GuestRam;
use crate::introspect::ring::GuestRing;
use cmaemu_abi::desc::*;
use cmaemu_abi::page::*;
use cmaemu_abi::trace::{self, TraceRecord};

/// RAM base of the board.
pub const RAM_BASE: u64 = 0x6000_0000;

/// A CMA area of the synthetic guest.
#[derive(Clone, Debug)]
pub struct SynthArea {
    pub name: String,
    pub base_pfn: u32,
    pub count: u32,
    pub order_per_bit: u32,
    pub bitmap: Vec<u32>,
    pub bitmap_pa: u64,
}

/// The synthetic guest (see the module doc).
pub struct SynthGuest {
    pub ram: GuestRam,
    pub base_pfn: u32,
    pub nr_pages: u32,
    pub pageblock_order: u32,
    pub max_order: u32,
    pub desc_pa: u64,
    pub page_array_pa: u64,
    pub pageblock_pa: u64,
    pub cma_table_pa: u64,
    pub as_table_pa: u64,
    pub ring_pa: u64,
    pub ring_capacity: u32,
    /// Model records of allocated pages (free pages are derived at commit).
    pub pages: Vec<PageRecord>,
    /// Per page: allocated (or reserved), i.e. not in the buddy.
    pub allocated: Vec<bool>,
    /// Per pageblock migrate type.
    pub pb_mt: Vec<u8>,
    pub areas: Vec<SynthArea>,
    /// (asid, ttbr0).
    pub spaces: Vec<(u32, u32)>,
    /// The pin table's records ([`SynthGuest::set_pins`]).
    pub pins: Vec<PinRecord>,
    pub pin_table_pa: u64,
    pub kernel_ttbr1: u32,
    pub mm_seq: u32,
    pub inject_mask: u32,
    next_l1: u64,
    next_l2: u64,
    next_bitmap: u64,
}

/// Frames reserved at the bottom of RAM for the structures above.
pub const RESERVED_FRAMES: u32 = 512;

impl SynthGuest {
    /// `mib` MiB of RAM at [`RAM_BASE`], 4 MiB pageblocks, 11 orders
    /// (the biscuitos-5.0 shape), everything free but the reserved 2 MiB.
    pub fn new(mib: u32) -> SynthGuest {
        let len = (mib as usize) << 20;
        let ram = GuestRam::new(RAM_BASE, len).expect("host memory");
        let nr_pages = (len >> 12) as u32;
        let base_pfn = (RAM_BASE >> 12) as u32;
        let pageblock_order = 10;
        let nblocks = nr_pages >> pageblock_order;
        let mut g = SynthGuest {
            ram,
            base_pfn,
            nr_pages,
            pageblock_order,
            max_order: 11,
            desc_pa: RAM_BASE,
            pageblock_pa: RAM_BASE + 0x1000,
            cma_table_pa: RAM_BASE + 0x2000,
            as_table_pa: RAM_BASE + 0x3000,
            // in the descriptor's page, after it
            pin_table_pa: RAM_BASE + 0x800,
            ring_pa: RAM_BASE + 0x4000,
            ring_capacity: 128,
            page_array_pa: RAM_BASE + 0x10_0000,
            pages: vec![PageRecord::INIT; nr_pages as usize],
            allocated: vec![false; nr_pages as usize],
            pb_mt: vec![MIGRATE_MOVABLE; nblocks as usize],
            areas: Vec::new(),
            spaces: Vec::new(),
            pins: Vec::new(),
            kernel_ttbr1: 0,
            mm_seq: 0,
            inject_mask: 0,
            next_l1: RAM_BASE + 0x1_0000,
            next_l2: RAM_BASE + 0x2_0000,
            next_bitmap: RAM_BASE + 0x8000,
        };
        assert!(nr_pages as u64 * 32 <= 0x10_0000, "page array must fit the reserved 1 MiB");
        g.pb_mt[0] = MIGRATE_UNMOVABLE;
        for i in 0..RESERVED_FRAMES as usize {
            g.allocated[i] = true;
            g.pages[i] = PageRecord { flags: PG_RESERVED, owner: OWNER_KIND_KERNEL, ..PageRecord::INIT };
        }
        trace::init(&mut g.ring(), g.ring_capacity).expect("ring");
        g
    }

    /// The ring as ring memory (for pushing records as the guest would).
    pub fn ring(&self) -> GuestRing<'_> {
        GuestRing::new(&self.ram, self.ring_pa, self.ring_capacity)
    }

    /// Push a record as the guest would.
    pub fn push(&self, r: &TraceRecord) -> bool {
        trace::push(&mut self.ring(), r)
    }

    fn idx(&self, pfn: u32) -> usize {
        (pfn - self.base_pfn) as usize
    }

    /// PFN of the first frame of pageblock `i`.
    pub fn pb_pfn(&self, i: u32) -> u32 {
        self.base_pfn + (i << self.pageblock_order)
    }

    /// Declare and activate a CMA area over whole pageblocks.
    pub fn add_cma(&mut self, name: &str, base_pfn: u32, count: u32, order_per_bit: u32) -> usize {
        let pb = 1u32 << self.pageblock_order;
        assert!(base_pfn.is_multiple_of(pb) && count.is_multiple_of(pb));
        for p in (base_pfn..base_pfn + count).step_by(pb as usize) {
            let i = ((p - self.base_pfn) >> self.pageblock_order) as usize;
            self.pb_mt[i] = MIGRATE_CMA;
        }
        let words = ((count >> order_per_bit) as usize).div_ceil(32);
        let bitmap_pa = self.next_bitmap;
        self.next_bitmap += 0x1000;
        self.areas.push(SynthArea { name: name.into(), base_pfn, count, order_per_bit, bitmap: vec![0; words], bitmap_pa });
        self.areas.len() - 1
    }

    /// Take `[pfn, pfn + count)` out of the buddy with the given record.
    pub fn alloc(&mut self, pfn: u32, count: u32, rec: PageRecord) {
        for p in pfn..pfn + count {
            let i = self.idx(p);
            assert!(!self.allocated[i], "synthetic double allocation of {p:#x}");
            self.allocated[i] = true;
            self.pages[i] = rec;
        }
    }

    /// Give `[pfn, pfn + count)` back to the buddy.
    pub fn free(&mut self, pfn: u32, count: u32) {
        for p in pfn..pfn + count {
            let i = self.idx(p);
            self.allocated[i] = false;
            self.pages[i] = PageRecord::INIT;
        }
    }

    /// `cma_alloc` at a chosen spot: set the bitmap bits and hand the pages
    /// to `device` (owner tag `OWNER_KIND_DEVICE | device`).
    pub fn cma_alloc_at(&mut self, area: usize, pfn: u32, count: u32, device: u32) {
        self.set_bits(area, pfn, count, true);
        self.alloc(pfn, count, PageRecord { owner: OWNER_KIND_DEVICE | device, ..PageRecord::INIT });
    }

    /// `cma_release`: clear the bits and free the pages.
    pub fn cma_release(&mut self, area: usize, pfn: u32, count: u32) {
        self.set_bits(area, pfn, count, false);
        self.free(pfn, count);
    }

    /// Set or clear the bitmap bits covering `[pfn, pfn + count)`.
    pub fn set_bits(&mut self, area: usize, pfn: u32, count: u32, on: bool) {
        let a = &mut self.areas[area];
        let first = (pfn - a.base_pfn) >> a.order_per_bit;
        let last = (pfn + count - 1 - a.base_pfn) >> a.order_per_bit;
        for b in first..=last {
            let (w, m) = ((b / 32) as usize, 1u32 << (b % 32));
            if on {
                a.bitmap[w] |= m;
            } else {
                a.bitmap[w] &= !m;
            }
        }
    }

    /// Create an address space (asid) with an empty L1 table.
    pub fn add_space(&mut self, asid: u32) -> u32 {
        let l1 = self.next_l1;
        self.next_l1 += 0x4000;
        self.ram.write(l1, &[0u8; 0x4000]).unwrap();
        self.spaces.push((asid, l1 as u32));
        l1 as u32
    }

    fn ttbr0(&self, asid: u32) -> u64 {
        self.spaces.iter().find(|s| s.0 == asid).expect("no such address space").1 as u64
    }

    /// Write the small-page PTE of `va` in `asid` (0 = unmap).
    pub fn set_pte(&mut self, asid: u32, va: u32, pfn: Option<u32>) {
        let l1 = self.ttbr0(asid) + ((va >> 20) as u64) * 4;
        let mut d1 = self.ram.read_u32(l1).unwrap();
        if d1 & 3 != 1 {
            let l2 = self.next_l2;
            self.next_l2 += 0x400;
            self.ram.write(l2, &[0u8; 0x400]).unwrap();
            d1 = l2 as u32 | 1;
            self.ram.write_u32(l1, d1).unwrap();
        }
        let pte_pa = (d1 & !0x3ff) as u64 + (((va >> 12) & 0xff) * 4) as u64;
        // small page, AP=0b11 (rw at PL0/PL1), cacheable/bufferable, nG
        let pte = pfn.map(|p| (p << 12) | 0x800 | 0x30 | 0xe).unwrap_or(0);
        self.ram.write_u32(pte_pa, pte).unwrap();
    }

    /// An anonymous user page at `pfn` mapped at `va` in `asid`.
    pub fn user_page(&mut self, asid: u32, va: u32, pfn: u32) {
        self.alloc(pfn, 1, PageRecord { flags: PG_LRU | PG_ANON, mapcount: 0, owner: OWNER_KIND_USER | asid, mapping: asid, ..PageRecord::INIT });
        self.set_pte(asid, va, Some(pfn));
    }

    /// Move a user page as migration does (remap the PTE, copy the data,
    /// free the old frame). The caller chooses which steps happen.
    pub fn move_user_page(&mut self, asid: u32, va: u32, old: u32, new: u32, copy: bool) {
        let rec = self.pages[self.idx(old)];
        self.free(old, 1);
        self.alloc(new, 1, rec);
        if copy {
            let mut b = vec![0u8; 4096];
            self.ram.read((old as u64) << 12, &mut b).unwrap();
            self.ram.write((new as u64) << 12, &b).unwrap();
        }
        self.set_pte(asid, va, Some(new));
    }

    /// Make `pins` the pin table's records, written straight into RAM as
    /// the guest updates its table in place (no commit needed).
    pub fn set_pins(&mut self, pins: &[PinRecord]) {
        assert!(pins.len() <= PIN_TABLE_LEN);
        self.pins = pins.to_vec();
        self.write_pins();
    }

    fn write_pins(&self) {
        let mut t = PinTable::EMPTY;
        for &r in &self.pins {
            t.push(r);
        }
        self.ram.write(self.pin_table_pa, as_bytes(&t)).unwrap();
    }

    /// Migrate type of the pageblock of `pfn`.
    pub fn mt_of(&self, pfn: u32) -> u8 {
        self.pb_mt[((pfn - self.base_pfn) >> self.pageblock_order) as usize]
    }

    /// The PA of `pfn`'s page record.
    pub fn page_pa(&self, pfn: u32) -> u64 {
        self.page_array_pa + (pfn - self.base_pfn) as u64 * 32
    }

    /// Read back the committed record of `pfn` from RAM.
    pub fn read_page(&self, pfn: u32) -> PageRecord {
        let mut b = [0u8; 32];
        self.ram.read(self.page_pa(pfn), &mut b).unwrap();
        from_bytes(&b).unwrap()
    }

    /// Overwrite the committed record of `pfn` in RAM.
    pub fn write_page(&self, pfn: u32, r: &PageRecord) {
        self.ram.write(self.page_pa(pfn), as_bytes(r)).unwrap();
    }

    /// Write the pageblock type of `pfn` straight into RAM.
    pub fn poke_pageblock(&self, pfn: u32, mt: u8) {
        let bitidx = ((pfn - self.base_pfn) >> self.pageblock_order) * NR_PAGEBLOCK_BITS;
        let pa = self.pageblock_pa + (bitidx / 32) as u64 * 4;
        let w = self.ram.read_u32(pa).unwrap();
        let sh = bitidx % 32;
        self.ram.write_u32(pa, (w & !(MIGRATETYPE_MASK << sh)) | ((mt as u32) << sh)).unwrap();
    }

    /// Write everything to RAM: page records with buddy free lists, bitmap,
    /// zone summary, CMA table and bitmaps, address spaces, descriptor.
    #[allow(clippy::needless_range_loop)]
    pub fn commit(&mut self) {
        let n = self.nr_pages as usize;
        let pb = 1usize << self.pageblock_order;
        let mut recs = self.pages.clone();
        let mut zone = ZoneRecord { name: fixed_name("Normal"), start_pfn: self.base_pfn, end_pfn: self.base_pfn + self.nr_pages, present_pages: self.nr_pages, ..ZoneRecord::EMPTY };
        zone.managed_pages = self.nr_pages - RESERVED_FRAMES;
        zone.cma_pages = self.areas.iter().map(|a| a.count).sum();
        // Free blocks: maximal aligned runs of free pages, order < max_order.
        let mut lists: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); MIGRATE_TYPES]; self.max_order as usize];
        let mut i = 0usize;
        while i < n {
            if self.allocated[i] {
                i += 1;
                continue;
            }
            let pfn = self.base_pfn as usize + i;
            let mut order = 0usize;
            while order + 1 < self.max_order as usize {
                let size = 1usize << (order + 1);
                if !pfn.is_multiple_of(size) || i + size > n || (i..i + size).any(|k| self.allocated[k]) || size > pb {
                    break;
                }
                order += 1;
            }
            let mt = self.pb_mt[i >> self.pageblock_order];
            lists[order][mt as usize].push(pfn as u32);
            for k in i..i + (1 << order) {
                recs[k] = PageRecord { refcount: 0, ..PageRecord::INIT };
            }
            recs[i].flags = PG_BUDDY | ((mt as u32) << PG_LIST_MT_SHIFT);
            recs[i].private = order as u32;
            zone.nr_free[order] += 1;
            zone.nr_free_pages += 1 << order;
            if mt == MIGRATE_CMA {
                zone.nr_free_cma_pages += 1 << order;
            }
            i += 1 << order;
        }
        for (order, per_mt) in lists.iter().enumerate() {
            for (mt, l) in per_mt.iter().enumerate() {
                zone.free_head[order][mt] = l.first().copied().unwrap_or(PFN_NONE);
                for (k, &p) in l.iter().enumerate() {
                    let r = &mut recs[(p - self.base_pfn) as usize];
                    r.lru_prev = if k == 0 { PFN_NONE } else { l[k - 1] };
                    r.lru_next = l.get(k + 1).copied().unwrap_or(PFN_NONE);
                }
            }
        }
        let mut bytes = Vec::with_capacity(n * 32);
        for r in &recs {
            bytes.extend_from_slice(as_bytes(r));
        }
        self.ram.write(self.page_array_pa, &bytes).unwrap();
        let words = (self.pb_mt.len() * NR_PAGEBLOCK_BITS as usize).div_ceil(32);
        let mut pbw = vec![0u32; words];
        for (b, &mt) in self.pb_mt.iter().enumerate() {
            let bit = b * NR_PAGEBLOCK_BITS as usize;
            pbw[bit / 32] |= (mt as u32) << (bit % 32);
        }
        for (k, w) in pbw.iter().enumerate() {
            self.ram.write_u32(self.pageblock_pa + 4 * k as u64, *w).unwrap();
        }
        for (k, a) in self.areas.iter().enumerate() {
            for (j, w) in a.bitmap.iter().enumerate() {
                self.ram.write_u32(a.bitmap_pa + 4 * j as u64, *w).unwrap();
            }
            let rec = CmaAreaRecord {
                name: fixed_name(&a.name),
                base_pfn: a.base_pfn,
                count: a.count,
                order_per_bit: a.order_per_bit,
                bitmap_pa: a.bitmap_pa as u32,
                bitmap_words: a.bitmap.len() as u32,
                flags: CMA_AREA_ACTIVE,
                alloc_pages_success: 0,
                alloc_pages_fail: 0,
            };
            self.ram.write(self.cma_table_pa + 64 * k as u64, as_bytes(&rec)).unwrap();
        }
        for (k, &(asid, ttbr0)) in self.spaces.iter().enumerate() {
            let rec = AddressSpaceRecord { asid, ttbr0, flags: AS_LIVE, pid: 100 + asid };
            self.ram.write(self.as_table_pa + 16 * k as u64, as_bytes(&rec)).unwrap();
        }
        let mut d = GuestDesc::new();
        d.mm_seq = self.mm_seq;
        d.inject_mask = self.inject_mask;
        d.base_pfn = self.base_pfn;
        d.nr_pages = self.nr_pages;
        d.page_array_pa = self.page_array_pa as u32;
        d.page_array_va = 0x8010_0000;
        d.pageblock_pa = self.pageblock_pa as u32;
        d.pageblock_words = words as u32;
        d.pageblock_base_pfn = self.base_pfn;
        d.pageblock_order = self.pageblock_order;
        d.max_order = self.max_order;
        d.nr_zones = 1;
        d.zones[0] = zone;
        d.nr_cma_areas = self.areas.len() as u32;
        d.cma_table_pa = self.cma_table_pa as u32;
        d.ring_pa = self.ring_pa as u32;
        d.ring_capacity = self.ring_capacity;
        d.nr_address_spaces = self.spaces.len() as u32;
        d.as_table_pa = self.as_table_pa as u32;
        d.pin_table_pa = self.pin_table_pa as u32;
        d.pin_table_len = PIN_TABLE_LEN as u32;
        self.write_pins();
        d.kernel_ttbr1 = self.kernel_ttbr1;
        d.ttbcr = 1;
        self.ram.write(self.desc_pa, as_bytes(&d)).unwrap();
    }

    /// Fill frame `pfn` with a recognisable pattern.
    pub fn fill(&self, pfn: u32, seed: u8) {
        let b: Vec<u8> = (0..4096u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        self.ram.write((pfn as u64) << 12, &b).unwrap();
    }

    /// The content of frame `pfn`.
    pub fn frame(&self, pfn: u32) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        self.ram.read((pfn as u64) << 12, &mut b).unwrap();
        b
    }
}
