//! Guest RAM: one anonymous host mapping shared by Unicorn (mem_map_ptr),
//! the DMA masters and the introspection readers on any thread, and the
//! dirty log of a set of watched 4 KiB pages (which were written since a
//! reader last took them): one watched range with one reader
//! ([`GuestRam::watch_writes`], the snapshot's page array) and single
//! watched pages ([`GuestRam::watch_page`], the page tables the frame
//! checks cache); and one page kept copy-on-write ([`GuestRam::preserve`],
//! the old frame of the page a migration moves).
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// What a RAM access or reservation can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RamError {
    #[error("cannot reserve {} MiB of host memory", .0 >> 20)]
    Reserve(usize),
    #[error("read of {len} bytes at {pa:#x} is outside RAM")]
    ReadOutside { pa: u64, len: usize },
    #[error("write of {len} bytes at {pa:#x} is outside RAM")]
    WriteOutside { pa: u64, len: usize },
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
    log: DirtyLog,
    cow: Cow,
}

/// The page kept copy-on-write, as the engine reads and writes it (the
/// vendored Unicorn's `uc_cmaemu_preserve`: same layout, checked by the
/// CPU against the engine's header with [`PRESERVE_LAYOUT`]).
#[repr(C)]
struct Preserve {
    /// The armed page's guest-physical address; [`NO_PAGE`] once its
    /// content was copied (whoever copies swaps it out first) or when none
    /// is kept.
    pa: AtomicU64,
    /// 1 once `buf` holds the page's content.
    copied: AtomicU32,
    _pad: u32,
    buf: UnsafeCell<[u8; PAGE]>,
}

/// The size of the engine's copy-on-write record and the offsets of its
/// `pa`, `copied` and `buf` fields.
pub const PRESERVE_LAYOUT: (usize, usize, usize, usize) =
    (std::mem::size_of::<Preserve>(), std::mem::offset_of!(Preserve, pa), std::mem::offset_of!(Preserve, copied), std::mem::offset_of!(Preserve, buf));

const NO_PAGE: u64 = u64::MAX;

/// One page whose content is kept as it was when [`GuestRam::preserve`]
/// named it: the first write into it after that (a guest store, in the
/// CPU; a host write, here) copies the page first.
struct Cow {
    rec: Box<Preserve>,
    /// The page last named (stays after the copy), [`NO_PAGE`]: none.
    page: AtomicU64,
    /// What the CPU must tell its engine: [`COW_SYNCED`], [`COW_ARM`] (a
    /// page was named) or [`COW_SET`] (the engine does not know the
    /// record yet).
    sync: AtomicU8,
    /// The engine knows the record.
    told: AtomicBool,
}

const COW_SYNCED: u8 = 0;
const COW_ARM: u8 = 1;
const COW_SET: u8 = 2;

/// What the CPU must tell its engine about the copy-on-write page (see
/// [`GuestRam::preserve_sync`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreserveSync {
    /// Nothing changed.
    None,
    /// Keep the page named in the record at `rec` (the engine's
    /// `uc_cmaemu_preserve`) for RAM `[base, base + pages * 4096)`, and arm
    /// it.
    Set { rec: *mut u8, base: u64, pages: u64 },
    /// A new page was named: send the next store into it through the
    /// slow path.
    Arm,
}

/// Which watched 4 KiB pages were written since they were last taken. The
/// host's own writes ([`GuestRam::write`], [`GuestRam::discard`]) set the
/// bits here; the guest's stores set them in the CPU (the vendored
/// Unicorn's `uc_cmaemu_set_dirty_log`, pointed at `bits` and `watch`).
/// Each page has one reader: the range's (the verification session's
/// snapshot) or the page's (its page-table cache); a page both watch is
/// the range's.
struct DirtyLog {
    /// One bit per 4 KiB page of RAM (bit 0 of word 0: the first page).
    bits: Box<[AtomicU64]>,
    /// The watched pages, as the engine reads them: the range's and the
    /// single pages'.
    watch: Box<[AtomicU64]>,
    /// The pages watched one by one ([`GuestRam::watch_page`]).
    pages: Box<[AtomicU64]>,
    /// The watched range `[pa, pa + len)`, page-aligned; len 0: none.
    watch_pa: AtomicU64,
    watch_len: AtomicU64,
    /// The watch changed: the CPU must tell its engine.
    watch_changed: AtomicBool,
    /// Bits were taken: the CPU must re-arm its engine before the guest
    /// runs again (see [`GuestRam::engine_sync`]).
    rearm: AtomicBool,
}

fn bit_of(map: &[AtomicU64], page: u64) -> bool {
    (map[(page / 64) as usize].load(Ordering::Relaxed) >> (page % 64)) & 1 != 0
}

fn set_bit(map: &[AtomicU64], page: u64, on: bool) -> bool {
    let m = 1u64 << (page % 64);
    let w = &map[(page / 64) as usize];
    let old = if on { w.fetch_or(m, Ordering::Relaxed) } else { w.fetch_and(!m, Ordering::Relaxed) };
    old & m != 0
}

impl DirtyLog {
    fn new(len: usize) -> DirtyLog {
        let words = (len / PAGE).div_ceil(64);
        let map = || (0..words).map(|_| AtomicU64::new(0)).collect();
        DirtyLog {
            bits: map(),
            watch: map(),
            pages: map(),
            watch_pa: AtomicU64::new(0),
            watch_len: AtomicU64::new(0),
            watch_changed: AtomicBool::new(false),
            rearm: AtomicBool::new(false),
        }
    }
    /// Whether page `page` (an index from RAM's start) lies in the range.
    fn in_range(&self, page: u64, base: u64) -> bool {
        let wlen = self.watch_len.load(Ordering::Relaxed);
        let wo = self.watch_pa.load(Ordering::Relaxed).wrapping_sub(base) / PAGE as u64;
        wlen > 0 && page >= wo && page < wo + wlen / PAGE as u64
    }
    /// Mark the watched pages among `[off, off + len)` (offsets into RAM).
    fn mark(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        for page in off / PAGE as u64..=(off + len - 1) / PAGE as u64 {
            if bit_of(&self.watch, page) {
                set_bit(&self.bits, page, true);
            }
        }
    }
    fn npages(&self) -> u64 {
        self.bits.len() as u64 * 64
    }
}

/// The 4 KiB page the dirty log counts in.
const PAGE: usize = 4096;

/// What the CPU must tell its engine about the dirty log (see
/// [`GuestRam::engine_sync`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtySync {
    /// Nothing changed.
    None,
    /// Log guest stores into the pages whose bit is set in `watch` in
    /// `bitmap` (bit k of each: the page at `base + k * 4096`, k <
    /// `pages`), re-arming every watched page; `pages` 0: stop logging.
    Watch { bitmap: *mut u64, watch: *const u64, base: u64, pages: u64 },
    /// Bits were taken or pages newly watched: send the next store to
    /// every watched page through the logging path again.
    Rearm,
}

// SAFETY: the mapping is plain memory; concurrent access from the CPU
// thread and readers is the same as a DMA master racing the CPU on
// hardware (byte-level races, no Rust references held across threads:
// every access goes through raw-pointer copies below).
unsafe impl Send for Mapping {}
// SAFETY: see above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` come from the successful mmap in `new`.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Guest physical RAM `[base, base + len)`.
#[derive(Clone)]
pub struct GuestRam {
    m: Arc<Mapping>,
    base: u64,
}

impl GuestRam {
    /// Reserve `len` bytes (committed by the host only when touched).
    pub fn new(base: u64, len: usize) -> Result<Self, RamError> {
        // SAFETY: an anonymous private mapping with no fixed address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RamError::Reserve(len));
        }
        let cow = Cow {
            rec: Box::new(Preserve { pa: AtomicU64::new(NO_PAGE), copied: AtomicU32::new(0), _pad: 0, buf: UnsafeCell::new([0; PAGE]) }),
            page: AtomicU64::new(NO_PAGE),
            sync: AtomicU8::new(COW_SYNCED),
            told: AtomicBool::new(false),
        };
        Ok(GuestRam { m: Arc::new(Mapping { ptr: p as *mut u8, len, log: DirtyLog::new(len), cow }), base })
    }
    pub fn base(&self) -> u64 {
        self.base
    }
    pub fn len(&self) -> usize {
        self.m.len
    }
    pub fn is_empty(&self) -> bool {
        self.m.len == 0
    }
    pub fn contains(&self, pa: u64, len: usize) -> bool {
        pa >= self.base && pa.checked_add(len as u64).is_some_and(|e| e <= self.base + self.m.len as u64)
    }
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.m.ptr
    }
    /// Copy guest bytes at physical `pa` into `buf`.
    pub fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), RamError> {
        if !self.contains(pa, buf.len()) {
            return Err(RamError::ReadOutside { pa, len: buf.len() });
        }
        // SAFETY: bounds checked above; the mapping lives while `self` does.
        unsafe { std::ptr::copy_nonoverlapping(self.m.ptr.add((pa - self.base) as usize), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    /// Copy `data` into guest RAM at physical `pa`.
    pub fn write(&self, pa: u64, data: &[u8]) -> Result<(), RamError> {
        if !self.contains(pa, data.len()) {
            return Err(RamError::WriteOutside { pa, len: data.len() });
        }
        self.copy_before_write(pa, data.len() as u64);
        // SAFETY: bounds checked above; the mapping lives while `self` does.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.m.ptr.add((pa - self.base) as usize), data.len()) };
        self.m.log.mark(pa - self.base, data.len() as u64);
        Ok(())
    }

    /// Have the CPU's engine set up for [`GuestRam::preserve`] at its next
    /// sync, no page kept yet (a session that will keep pages calls it
    /// when it starts: the engine's one-off set-up — its reverse map, every
    /// RAM store sent to the slow path once — is then not paid at the
    /// first page kept).
    pub fn prepare_preserve(&self) {
        let cow = &self.m.cow;
        if !cow.told.load(Ordering::Relaxed) {
            cow.sync.fetch_max(COW_SET, Ordering::Release);
        }
    }

    /// Keep the content the 4 KiB page at `pa` (aligned down) has now,
    /// without copying it: the first write into it from now on — a guest
    /// store (through the CPU, once it has synced: [`GuestRam::preserve_sync`])
    /// or a host write — copies the page first. One page at a time: it
    /// replaces the page named before. False when the page is outside RAM
    /// (nothing is kept).
    pub fn preserve(&self, pa: u64) -> bool {
        let pa = pa & !(PAGE as u64 - 1);
        let cow = &self.m.cow;
        if !self.contains(pa, PAGE) {
            cow.rec.pa.store(NO_PAGE, Ordering::Release);
            cow.page.store(NO_PAGE, Ordering::Relaxed);
            return false;
        }
        cow.rec.copied.store(0, Ordering::Relaxed);
        cow.page.store(pa, Ordering::Relaxed);
        cow.rec.pa.store(pa, Ordering::Release);
        let want = if cow.told.load(Ordering::Relaxed) { COW_ARM } else { COW_SET };
        cow.sync.fetch_max(want, Ordering::Release);
        true
    }

    /// Whether the 4 KiB page at `new` equals the content the page at
    /// `old` had when [`GuestRam::preserve`] named it (a plain memory
    /// compare: with the page itself while it was not written since, else
    /// with its copy). None when `old` is not the page kept or `new` is
    /// outside RAM.
    pub fn equals_preserved(&self, old: u64, new: u64) -> Option<bool> {
        let kept = self.kept(old)?;
        if !self.contains(new, PAGE) {
            return None;
        }
        // SAFETY: bounds checked above; the mapping lives while `self`
        // does. `kept` is the page itself or the record's buffer, which is
        // written only by whoever swapped its page out (before `copied` was
        // set, which `kept` read) and not again until `preserve` names a
        // page, which its one user does not do while comparing.
        let new = unsafe { std::slice::from_raw_parts(self.m.ptr.add((new - self.base) as usize), PAGE) };
        Some(new == kept)
    }

    /// Copy the content the page at `old` had when it was named (see
    /// [`GuestRam::equals_preserved`]) into `buf` (4096 bytes). False when
    /// `old` is not the page kept.
    pub fn read_preserved(&self, old: u64, buf: &mut [u8; PAGE]) -> bool {
        let Some(kept) = self.kept(old) else { return false };
        buf.copy_from_slice(kept);
        true
    }

    /// The kept content of `old` (the page itself, or its copy).
    fn kept(&self, old: u64) -> Option<&[u8]> {
        let cow = &self.m.cow;
        if cow.page.load(Ordering::Relaxed) != old {
            return None;
        }
        if cow.rec.copied.load(Ordering::Acquire) == 1 {
            // SAFETY: see `equals_preserved`: the copy is complete and not
            // written again while the returned slice is used by this
            // module's own callers.
            return Some(unsafe { &*cow.rec.buf.get() });
        }
        // SAFETY: `old` is a page inside RAM (`preserve` checked it).
        Some(unsafe { std::slice::from_raw_parts(self.m.ptr.add((old - self.base) as usize), PAGE) })
    }

    /// A host write into `[pa, pa + len)` comes: copy the kept page first
    /// if it lies there and was not copied yet.
    fn copy_before_write(&self, pa: u64, len: u64) {
        let rec = &self.m.cow.rec;
        let p = rec.pa.load(Ordering::Acquire);
        if p == NO_PAGE || len == 0 || p >= pa.saturating_add(len) || pa >= p + PAGE as u64 {
            return;
        }
        if rec.pa.compare_exchange(p, NO_PAGE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            // SAFETY: `p` is a page inside RAM (`preserve` checked it);
            // having swapped it out, this is the buffer's one writer until
            // `preserve` names a page again.
            unsafe { std::ptr::copy_nonoverlapping(self.m.ptr.add((p - self.base) as usize), (*rec.buf.get()).as_mut_ptr(), PAGE) };
            rec.copied.store(1, Ordering::Release);
        }
    }

    /// What the CPU must tell its engine about the page kept copy-on-write
    /// before the guest runs again (called with [`GuestRam::engine_sync`]).
    /// Clears the request.
    pub fn preserve_sync(&self) -> PreserveSync {
        let cow = &self.m.cow;
        match cow.sync.swap(COW_SYNCED, Ordering::Acquire) {
            COW_SYNCED => PreserveSync::None,
            COW_SET => {
                cow.told.store(true, Ordering::Relaxed);
                PreserveSync::Set { rec: &*cow.rec as *const Preserve as *mut u8, base: self.base, pages: (self.m.len / PAGE) as u64 }
            }
            _ => PreserveSync::Arm,
        }
    }

    /// Watch `[pa, pa + len)` (widened to whole 4 KiB pages, clipped to
    /// RAM) for writes: from now on every write into it — the guest's
    /// stores (through the CPU, once it has synced: [`GuestRam::engine_sync`])
    /// and the host's — marks its page until [`GuestRam::take_dirty`]
    /// takes it. Every page of the new range starts marked (what was
    /// written before was not logged). One reader may take the bits. It
    /// replaces the range watched before (single pages stay watched).
    pub fn watch_writes(&self, pa: u64, len: u64) {
        let log = &self.m.log;
        let ram_end = self.base + self.m.len as u64;
        let lo = pa.max(self.base) & !(PAGE as u64 - 1);
        let hi = pa.saturating_add(len).min(ram_end).next_multiple_of(PAGE as u64).min(ram_end);
        let len = hi.saturating_sub(lo);
        if let Some((opa, olen)) = self.watched() {
            // the old range's pages stay watched only as single pages,
            // marked: their marks went to the range's reader until now
            let o = (opa - self.base) / PAGE as u64;
            for page in o..o + olen / PAGE as u64 {
                let single = bit_of(&log.pages, page);
                set_bit(&log.watch, page, single);
                if single {
                    set_bit(&log.bits, page, true);
                }
            }
        }
        log.watch_pa.store(lo, Ordering::Relaxed);
        log.watch_len.store(len, Ordering::Relaxed);
        let first = (lo - self.base) / PAGE as u64;
        for page in first..first + len / PAGE as u64 {
            set_bit(&log.watch, page, true);
            set_bit(&log.bits, page, true);
        }
        log.watch_changed.store(true, Ordering::Release);
    }

    /// The watched range `(pa, len)`, if any.
    pub fn watched(&self) -> Option<(u64, u64)> {
        let len = self.m.log.watch_len.load(Ordering::Relaxed);
        (len > 0).then(|| (self.m.log.watch_pa.load(Ordering::Relaxed), len))
    }

    /// Take (and clear) the marks of the 4 KiB pages of `[pa, pa + len)`,
    /// which must lie inside the watched range (None otherwise: nothing is
    /// known about writes outside it). `f(page_pa)` is called for each
    /// page written since its mark was last taken, in address order. The
    /// CPU re-arms its engine before the guest runs again.
    pub fn take_dirty(&self, pa: u64, len: u64, mut f: impl FnMut(u64)) -> Option<()> {
        let (wpa, wlen) = self.watched()?;
        if len == 0 || pa < wpa || pa.checked_add(len)? > wpa + wlen {
            return None;
        }
        let log = &self.m.log;
        let first = (pa - self.base) / PAGE as u64;
        let last = (pa + len - 1 - self.base) / PAGE as u64;
        let mut w = first / 64;
        while w <= last / 64 {
            let lo = if w == first / 64 { first % 64 } else { 0 };
            let hi = if w == last / 64 { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            let word = &log.bits[w as usize];
            if word.load(Ordering::Relaxed) & mask != 0 {
                let mut taken = word.fetch_and(!mask, Ordering::Relaxed) & mask;
                while taken != 0 {
                    let b = taken.trailing_zeros() as u64;
                    taken &= taken - 1;
                    f(self.base + (w * 64 + b) * PAGE as u64);
                }
            }
            w += 1;
        }
        log.rearm.store(true, Ordering::Release);
        Some(())
    }

    /// Watch (or stop watching) the single 4 KiB page holding `pa` for
    /// writes, as [`GuestRam::watch_writes`] does a range, for another
    /// reader: [`GuestRam::take_page`] takes its mark. Unlike a range, a
    /// page starts unmarked: its reader reads it after watching it, and
    /// every write from then on (once the CPU has synced) marks it. False
    /// when `pa` is outside RAM (nothing to watch: RAM never grows).
    pub fn watch_page(&self, pa: u64, on: bool) -> bool {
        if !self.contains(pa, 1) {
            return false;
        }
        let log = &self.m.log;
        let page = (pa - self.base) / PAGE as u64;
        if set_bit(&log.pages, page, on) != on {
            let watched = on || log.in_range(page, self.base);
            if set_bit(&log.watch, page, watched) != watched && watched {
                log.watch_changed.store(true, Ordering::Release);
            }
        }
        true
    }

    /// Take (and clear) the mark of the single watched page holding `pa`:
    /// whether it was written since its mark was last taken. None when
    /// nothing is known: the page is not watched on its own
    /// ([`GuestRam::watch_page`]) or lies in the watched range (whose
    /// reader takes its marks).
    pub fn take_page(&self, pa: u64) -> Option<bool> {
        if !self.contains(pa, 1) {
            return None;
        }
        let log = &self.m.log;
        let page = (pa - self.base) / PAGE as u64;
        if !bit_of(&log.pages, page) || log.in_range(page, self.base) {
            return None;
        }
        if !bit_of(&log.bits, page) {
            return Some(false);
        }
        set_bit(&log.bits, page, false);
        log.rearm.store(true, Ordering::Release);
        Some(true)
    }

    /// A new engine will log the guest's stores (called by the CPU when it
    /// is made): every watched page is marked (what ran before was not
    /// logged by it) and the engine is told the watch at its first sync.
    pub fn rewatch(&self) {
        let cow = &self.m.cow;
        if cow.told.swap(false, Ordering::Relaxed) || cow.sync.load(Ordering::Relaxed) != COW_SYNCED {
            cow.sync.store(COW_SET, Ordering::Release);
        }
        let log = &self.m.log;
        for (b, w) in log.bits.iter().zip(log.watch.iter()) {
            b.fetch_or(w.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        log.watch_changed.store(true, Ordering::Release);
    }

    /// What the CPU must do to its engine before the guest runs again
    /// (called by the CPU after every host service and before every run):
    /// tell it a new watch, or re-arm it after a take. Clears the request.
    pub fn engine_sync(&self) -> DirtySync {
        let log = &self.m.log;
        if log.watch_changed.swap(false, Ordering::Acquire) {
            log.rearm.store(false, Ordering::Relaxed);
            let any = log.watch.iter().any(|w| w.load(Ordering::Relaxed) != 0);
            return DirtySync::Watch {
                bitmap: log.bits.as_ptr() as *mut u64,
                watch: log.watch.as_ptr() as *const u64,
                base: self.base,
                pages: if any { log.npages() } else { 0 },
            };
        }
        if log.rearm.swap(false, Ordering::Acquire) {
            return DirtySync::Rearm;
        }
        DirtySync::None
    }
    pub fn read_u32(&self, pa: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(pa, &mut b).ok()?;
        Some(u32::from_le_bytes(b))
    }
    pub fn write_u32(&self, pa: u64, v: u32) -> Result<(), RamError> {
        self.write(pa, &v.to_le_bytes())
    }
    /// Zero all of RAM by giving its pages back to the host (they read as
    /// zeros and are committed again when touched).
    pub fn discard(&self) {
        self.copy_before_write(self.base, self.m.len as u64);
        // SAFETY: the whole private anonymous mapping made in `new`; after
        // MADV_DONTNEED it stays mapped and reads as zeros. Racing readers
        // see old bytes or zeros, as with any write.
        let r = unsafe { libc::madvise(self.m.ptr as *mut libc::c_void, self.m.len, libc::MADV_DONTNEED) };
        if r != 0 {
            // SAFETY: as above; a plain zero fill if the advice was refused.
            unsafe { std::ptr::write_bytes(self.m.ptr, 0, self.m.len) };
        }
        self.m.log.mark(0, self.m.len as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_page_reads_as_it_was_until_the_next_is_named() {
        let ram = GuestRam::new(0x6000_0000, 1 << 16).unwrap();
        let (old, new) = (0x6000_1000, 0x6000_3000);
        ram.write(old, &[7u8; 4096]).unwrap();
        ram.write(new, &[7u8; 4096]).unwrap();
        assert!(ram.preserve(old + 0x10), "any address names its page");
        assert_eq!(ram.equals_preserved(old, new), Some(true));
        // a host write into the page (a DMA master) copies it first, once
        ram.write(old + 8, &[9u8; 2]).unwrap();
        ram.write_u32(old + 4000, 5).unwrap();
        assert_eq!(ram.equals_preserved(old, new), Some(true), "compared with the copy");
        let mut b = [0u8; 4096];
        assert!(ram.read_preserved(old, &mut b));
        assert_eq!(b, [7u8; 4096]);
        ram.write(new + 4095, &[8]).unwrap();
        assert_eq!(ram.equals_preserved(old, new), Some(false));
        // a write ending just before the page, or starting just after it,
        // copies nothing: the next page named is read in place
        assert!(ram.preserve(new));
        ram.write(new - 4, &[1u8; 4]).unwrap();
        ram.write(new + 4096, &[1u8; 4]).unwrap();
        ram.write(new + 4095, &[6]).unwrap();
        assert!(ram.read_preserved(new, &mut b));
        assert_eq!((b[4094], b[4095]), (7, 8), "the page as it was when named");
        assert!(!ram.read_preserved(old, &mut b), "only the last page named is kept");
        assert_eq!(ram.equals_preserved(old, new), None);
        assert!(ram.preserve(old));
        assert_eq!(ram.equals_preserved(old, 0x6000_f001), None, "the new page is outside RAM");
        // discarding RAM copies the kept page first
        ram.discard();
        assert!(ram.read_preserved(old, &mut b));
        assert_eq!((b[0], b[8], b[4000]), (7, 9, 5));
        assert!(!ram.preserve(0x6001_0000), "outside RAM: nothing is kept");
        assert!(!ram.read_preserved(0x6001_0000, &mut b) && !ram.read_preserved(old, &mut b));
    }

    #[test]
    fn the_engine_learns_the_kept_page_once_then_is_asked_to_arm() {
        let ram = GuestRam::new(0x6000_0000, 1 << 16).unwrap();
        assert_eq!(ram.preserve_sync(), PreserveSync::None);
        ram.preserve(0x6000_1000);
        let rec = &*ram.m.cow.rec as *const Preserve as *mut u8;
        assert_eq!(ram.preserve_sync(), PreserveSync::Set { rec, base: 0x6000_0000, pages: 16 });
        assert_eq!(ram.preserve_sync(), PreserveSync::None);
        ram.preserve(0x6000_2000);
        assert_eq!(ram.preserve_sync(), PreserveSync::Arm);
        // a new engine learns it again
        ram.rewatch();
        assert_eq!(ram.preserve_sync(), PreserveSync::Set { rec, base: 0x6000_0000, pages: 16 });
    }

    #[test]
    fn host_writes_into_the_watched_range_are_taken_once() {
        let ram = GuestRam::new(0x6000_0000, 1 << 20).unwrap();
        let take = |pa, len| {
            let mut v = Vec::new();
            ram.take_dirty(pa, len, |p| v.push(p)).map(|_| v)
        };
        assert_eq!(take(0x6000_1000, 0x1000), None, "nothing watched");
        ram.watch_writes(0x6000_1010, 0x3000);
        assert_eq!(ram.watched(), Some((0x6000_1000, 0x4000)), "widened to whole pages");
        assert_eq!(ram.engine_sync(), DirtySync::Watch { bitmap: ram.m.log.bits.as_ptr() as *mut u64, watch: ram.m.log.watch.as_ptr() as *const u64, base: 0x6000_0000, pages: 256 });
        assert_eq!(take(0x6000_1000, 0x4000), Some(vec![0x6000_1000, 0x6000_2000, 0x6000_3000, 0x6000_4000]), "a new watch starts marked");
        assert_eq!(ram.engine_sync(), DirtySync::Rearm);
        assert_eq!(ram.engine_sync(), DirtySync::None);
        assert_eq!(take(0x6000_1000, 0x4000), Some(vec![]));
        ram.write(0x6000_2ffe, &[1, 2, 3, 4]).unwrap();
        ram.write(0x6000_8000, &[1]).unwrap();
        assert_eq!(take(0x6000_1000, 0x2000), Some(vec![0x6000_2000]), "only the pages asked for");
        assert_eq!(take(0x6000_1000, 0x4000), Some(vec![0x6000_3000]));
        assert_eq!(take(0x6000_0000, 0x2000), None, "partly outside the watch");
        ram.discard();
        assert_eq!(take(0x6000_1000, 0x4000).map(|v| v.len()), Some(4), "discarding RAM rewrites every page");
    }

    #[test]
    fn single_watched_pages_are_taken_apart_from_the_range() {
        let ram = GuestRam::new(0x6000_0000, 1 << 20).unwrap();
        let watch = |ram: &GuestRam| -> Vec<u64> { (0..256).filter(|&p| bit_of(&ram.m.log.watch, p)).collect() };
        assert_eq!(ram.take_page(0x6000_9000), None, "not watched");
        assert!(ram.watch_page(0x6000_9abc, true));
        assert!(!ram.watch_page(0x6010_0000, true), "outside RAM");
        assert!(matches!(ram.engine_sync(), DirtySync::Watch { pages: 256, .. }));
        assert_eq!(ram.take_page(0x6000_9000), Some(false), "a single page starts unmarked");
        ram.write(0x6000_9ffc, &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!((ram.take_page(0x6000_9000), ram.take_page(0x6000_9000)), (Some(true), Some(false)), "taken once");
        assert_eq!(ram.engine_sync(), DirtySync::Rearm);
        assert_eq!(ram.take_page(0x6000_a000), None, "the next page was written but is not watched");
        ram.watch_writes(0x6000_8000, 0x2000);
        assert_eq!(watch(&ram), vec![8, 9]);
        assert_eq!(ram.take_page(0x6000_9000), None, "the range's reader takes its pages");
        ram.watch_writes(0x6000_2000, 0x1000);
        assert_eq!(watch(&ram), vec![2, 9], "the old range's pages stay watched only as single pages");
        assert_eq!(ram.take_page(0x6000_9000), Some(true), "marked when it left the range");
        assert_eq!(ram.take_page(0x6000_9000), Some(false));
        ram.watch_page(0x6000_9000, false);
        assert_eq!(watch(&ram), vec![2]);
        ram.write(0x6000_9000, &[1]).unwrap();
        assert_eq!(ram.take_page(0x6000_9000), None);
        ram.watch_page(0x6000_2000, true);
        ram.watch_page(0x6000_2000, false);
        assert_eq!(watch(&ram), vec![2], "a range page stays watched");
    }
}
