//! Follows each `cma_alloc` through the guest's records (start, busy
//! retries, finish), asks [`explain`](super::explain) at every busy retry
//! and failure, and words the console lines: one per distinct cause, after
//! Linux's own failure lines (the guest rings `DOORBELL_CMA_ALLOC_DONE`
//! there). An allocation that succeeds on its first try has no cause.
use super::dump::{dump_page, MIGRATION_FAILURE, UNMOVABLE_PAGE};
use super::{errno_name, explain, thousands, Cause, Extra, PinSite, PinTable, Request};
use crate::introspect::Snapshot;
use cmaemu_abi::trace::GuestEvent;

/// The causes of one busy retry or failure, for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub area: usize,
    pub count: u32,
    pub align: u32,
    /// Busy retries of this allocation before (and including) this one.
    pub retries: u32,
    /// The allocation's end (false: a busy retry).
    pub last: bool,
    pub errno: i32,
    /// Pages migrated by the allocation so far.
    pub migrated: u64,
    pub causes: Vec<Cause>,
}

/// One allocation in progress.
#[derive(Clone, Debug)]
struct Open {
    area: usize,
    count: u32,
    align: u32,
    retries: u32,
    /// Ranges explained (busy retries, and a final try that was not one).
    tries: u32,
    /// The range of the last busy retry.
    last_retry: Option<u32>,
    migrated: u64,
    /// Distinct causes so far, with how many tries named each and the
    /// `dump_page` lines of its page as first seen.
    causes: Vec<(Cause, u32, Vec<String>)>,
}

/// See the module doc.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    open: Option<Open>,
    /// Console lines waiting for the guest's `cma_alloc` to return.
    pending: Vec<String>,
    /// Live pins and where they came from (`TR_PIN` records).
    pins: PinTable,
    /// Who maps what, kept across the tries of the open allocation.
    maps: std::cell::RefCell<super::MapCache>,
    /// Per-CPU blocks (head, order) inside the range of the running try
    /// when its migration began ([`Tracker::pcp_at_migrate`]).
    pcp_seen: Vec<(u32, u32)>,
}

impl Tracker {
    /// Whether `ev` needs the guest state of this moment (a fresh
    /// snapshot) for [`Tracker::on_event`]; `s` is the last one (the
    /// areas' sizes do not change).
    pub fn needs_state(&self, ev: &GuestEvent, s: &Snapshot) -> bool {
        match ev {
            // only a request larger than the area is explained at its start
            GuestEvent::CmaAllocStart { area, count, .. } => s.cma.get(*area as usize).is_none_or(|a| *count > a.count),
            GuestEvent::CmaAllocBusyRetry { .. } => true,
            GuestEvent::CmaAllocFinish { errorno, .. } => *errorno != 0,
            _ => false,
        }
    }

    /// Follow one guest record; `s` is the state as of now (fresh when
    /// [`Tracker::needs_state`] said so).
    pub fn on_event(&mut self, ev: &GuestEvent, s: &Snapshot, x: Extra<'_>) -> Option<Found> {
        match *ev {
            GuestEvent::Pin { on, pfn, va, asid, func, command } => {
                if on {
                    let command = String::from_utf8_lossy(cmaemu_abi::desc::name_bytes(&command)).into_owned();
                    self.pins.entry(pfn).or_default().push(PinSite { asid, va, func, command });
                } else if let Some(v) = self.pins.get_mut(&pfn) {
                    // the oldest pin of that frame goes first
                    if !v.is_empty() {
                        v.remove(0);
                    }
                    if v.is_empty() {
                        self.pins.remove(&pfn);
                    }
                }
                None
            }
            GuestEvent::CmaPhase { phase: cmaemu_abi::trace::CMA_PHASE_ISOLATE, .. } => {
                // a new try: what the last one's migration found is gone
                self.pcp_seen.clear();
                None
            }
            GuestEvent::CmaAllocStart { area, count, align } => {
                self.maps.get_mut().clear();
                self.pcp_seen.clear();
                self.open = Some(Open { area: area as usize, count, align, retries: 0, tries: 0, last_retry: None, migrated: 0, causes: Vec::new() });
                let a = s.cma.get(area as usize)?;
                if count <= a.count {
                    return None;
                }
                // cma_alloc() returns at once, without a finish record
                let found = self.found(s, x, None, super::ENOMEM, true, true)?;
                self.close(s, &found);
                Some(found)
            }
            GuestEvent::MigratePage { new_pfn, asid, nr_vas, vas, .. } => {
                if self.open.is_some() {
                    let n = (nr_vas as usize).min(vas.len());
                    self.maps.get_mut().moved(s, new_pfn, asid, &vas[..n]);
                }
                None
            }
            GuestEvent::MigratePages { succeeded, .. } => {
                if let Some(o) = &mut self.open {
                    o.migrated += succeeded as u64;
                }
                None
            }
            GuestEvent::CmaAllocBusyRetry { pfn, .. } => {
                let o = self.open.as_mut()?;
                o.retries += 1;
                let range = u32::try_from(pfn).ok();
                o.last_retry = range;
                self.found(s, x, range, super::EBUSY, false, true)
            }
            GuestEvent::CmaAllocFinish { pfn, errorno, .. } => {
                if errorno == 0 {
                    self.maps.get_mut().clear();
                    let o = self.open.take()?;
                    if o.retries > 0 {
                        self.pending.extend(lines(s, &o, 0));
                    }
                    return None;
                }
                let range = u32::try_from(pfn).ok().filter(|_| pfn != u64::MAX);
                // -EBUSY at the last retry's range: the bitmap had no other
                // run to try; that try was already counted
                let new_try = !(errorno == super::EBUSY && range.is_some() && self.open.as_ref().is_some_and(|o| o.last_retry == range));
                let found = self.found(s, x, range, errorno, true, new_try)?;
                self.close(s, &found);
                Some(found)
            }
            _ => None,
        }
    }

    /// Explain the open allocation's try at `range` and remember its causes.
    fn found(&mut self, s: &Snapshot, x: Extra<'_>, range: Option<u32>, errno: i32, last: bool, new_try: bool) -> Option<Found> {
        let o = self.open.as_ref()?;
        let req = Request { area: o.area, count: o.count, align: o.align, range, errno };
        let x = Extra { pins: Some(&self.pins), maps: Some(&self.maps), pcp_seen: &self.pcp_seen, ..x };
        let causes = explain(s, x, &req);
        let o = self.open.as_mut()?;
        if !new_try {
            return Some(Found { area: o.area, count: o.count, align: o.align, retries: o.retries, last, errno, migrated: o.migrated, causes });
        }
        o.tries += 1;
        for c in &causes {
            let same_kind = o.causes.iter().filter(|(k, _, _)| k.kind() == c.kind()).count();
            match o.causes.iter_mut().find(|(k, _, _)| k.kind() == c.kind() && k.pfn() == c.pfn()) {
                Some((_, n, _)) => *n += 1,
                // a few pages of each kind over all tries (each try may
                // name another); the rest count with the last one
                None if same_kind >= super::MAX_PAGES_PER_KIND => {
                    if let Some((_, n, _)) = o.causes.iter_mut().rev().find(|(k, _, _)| k.kind() == c.kind()) {
                        *n += 1;
                    }
                }
                // Linux's dump of the first page of each kind
                None if same_kind == 0 => o.causes.push((c.clone(), 1, page_dump(s, x, c))),
                None => o.causes.push((c.clone(), 1, Vec::new())),
            }
        }
        Some(Found { area: o.area, count: o.count, align: o.align, retries: o.retries, last, errno, migrated: o.migrated, causes })
    }

    fn close(&mut self, s: &Snapshot, f: &Found) {
        self.maps.get_mut().clear();
        if let Some(o) = self.open.take() {
            self.pending.extend(lines(s, &o, f.errno));
        }
    }

    /// The per-CPU blocks (head pfn, order, ascending) the host found
    /// inside the running try's range as its migration began (the guest's
    /// `CMA_PHASE_MIGRATE` record, after `drain_all_pages`).
    pub fn pcp_at_migrate(&mut self, blocks: Vec<(u32, u32)>) {
        self.pcp_seen = blocks;
    }

    /// The console lines ready to print (the guest's `cma_alloc` returned).
    pub fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending)
    }
}

/// `cmaemu: cma_alloc <area> <count> pages <outcome>: <cause>`, one line
/// per distinct cause, most decisive first.
fn lines(s: &Snapshot, o: &Open, errno: i32) -> Vec<String> {
    let name = s.cma.get(o.area).map(|a| a.name.as_str()).unwrap_or("?");
    let mut head = format!("cmaemu: cma_alloc {name} {} pages", thousands(o.count as u64));
    if o.align > 0 {
        head.push_str(&format!(" (align {})", o.align));
    }
    if errno == 0 {
        head.push_str(&format!(" succeeded after {} busy retr{}", o.retries, if o.retries == 1 { "y" } else { "ies" }));
    } else {
        head.push_str(&format!(" failed ({errno} {})", errno_name(errno)));
        if o.retries > 0 {
            head.push_str(&format!(" after {} busy retr{}", o.retries, if o.retries == 1 { "y" } else { "ies" }));
        }
    }
    if o.migrated > 0 {
        head.push_str(&format!(", {} pages migrated", thousands(o.migrated)));
    }
    if o.causes.is_empty() {
        return vec![format!("{head}: no cause found in guest memory")];
    }
    let tries = o.tries;
    let mut causes = o.causes.clone();
    causes.sort_by_key(|(c, _, _)| c.rank());
    let mut out = Vec::new();
    for (c, n, dump) in &causes {
        let mut l = format!("{head}: {c}");
        if tries > 1 {
            l.push_str(&format!(" [{n} of {tries} tries]"));
        }
        out.push(l);
        out.extend(dump.iter().map(|d| format!("cmaemu: {d}")));
    }
    out
}

/// Linux's `dump_page()` of the page a cause names, as
/// `alloc_contig_dump_pages()` (a page migration could not move) or
/// `has_unmovable_pages()` (an unmovable one) would print it; none for a
/// cause without one page (isolation, fragmentation, size).
fn page_dump(s: &Snapshot, x: Extra<'_>, c: &Cause) -> Vec<String> {
    let (pfn, reason) = match c {
        Cause::Pinned { pfn, .. } | Cause::LruBatch { pfn, .. } | Cause::NotMigrated { pfn, .. } | Cause::PcpList { pfn, .. } | Cause::PcpTaken { pfn, .. } => (*pfn, MIGRATION_FAILURE),
        Cause::OutOfTargets { first, .. } => (*first, MIGRATION_FAILURE),
        Cause::DeviceOwned { pfn, .. } | Cause::Unmovable { pfn, .. } => (*pfn, UNMOVABLE_PAGE),
        Cause::TooLarge { .. } | Cause::NotIsolated { .. } | Cause::NotCma { .. } | Cause::Fragmented { .. } => return Vec::new(),
    };
    // page->index of an anonymous page: its VA's page number
    let index = match c {
        Cause::Pinned { mapped, .. } | Cause::PcpTaken { mapped, .. } => mapped.first().map(|m| m.va),
        _ => super::first_va(s, x, pfn),
    };
    dump_page(s, pfn, index.map_or(0, |va| va >> 12), reason)
}
