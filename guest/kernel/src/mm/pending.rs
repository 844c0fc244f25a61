//! The page being migrated, as the host hears of it: its old and new
//! frame and the (asid, VA)s unmapped (a shared page is mapped by several
//! tasks). Its `migrate_page` records go out when the next page starts or
//! the mm section ends.

pub struct Pending {
    pub old: u32,
    pub new: u32,
    pub maps: [(u16, u32); 8],
    pub n: usize,
}

impl Pending {
    pub fn new(old: u32) -> Self {
        Pending { old, new: 0, maps: [(0, 0); 8], n: 0 }
    }

    /// One more mapping of the page was unmapped.
    pub fn add_map(&mut self, asid: u16, va: u32) {
        if self.n < self.maps.len() {
            self.maps[self.n] = (asid, va);
            self.n += 1;
        }
    }
}

/// Push the records of the page whose migration is complete (the host's
/// checkers compare contents, PTEs and cached translations when it next
/// looks), without ringing the doorbell. Returns whether records were
/// pushed.
pub fn flush_quiet(pending: &mut Option<Pending>) -> bool {
    let Some(p) = pending.take() else { return false };
    let ts = crate::hostif::now();
    // one record group per address space, in the order first unmapped
    let maps = &p.maps[..p.n];
    for (i, &(asid, _)) in maps.iter().enumerate() {
        if maps[..i].iter().any(|m| m.0 == asid) {
            continue;
        }
        let mut vas = [0u32; 8];
        let mut k = 0;
        for m in maps.iter().filter(|m| m.0 == asid) {
            vas[k] = m.1;
            k += 1;
        }
        cmaemu_abi::trace::TraceRecord::migrate_page_records(ts, p.old, p.new, asid as u32, &vas[..k], |r| crate::hostif::push(&r));
    }
    true
}

/// As [`flush_quiet`], then tell the host at once.
pub fn flush(pending: &mut Option<Pending>) {
    if flush_quiet(pending) {
        crate::hostif::doorbell();
    }
}
