//! The verification session of one guest: attach to the guest's
//! descriptor, then call [`Session::service`] when the guest rings the
//! trace doorbell, [`Session::dma`] for every DMA master transfer,
//! [`Session::frame_boundary`] at each frame, and optionally
//! [`Session::translation`] for every user translation the CPU caches.
//! It drains the ring, decodes records into events, captures old frames at
//! `migrate_page_begin`, runs every verifier and appends events (violations
//! included, structured) to its output, which [`Session::take_events`]
//! hands to the [`Instrumentation`](super::Instrumentation).
use crate::findings::{Check, CheckCtx, Violation};
use crate::introspect::{IntrospectError, RingDrainer, Snapshot};
use crate::memory::GuestRam;
use crate::trace::{Decoder, Event, EventKind, RecentEvents, Vas, VAS_INLINE};
use crate::verify::{check_dma, check_integrity, check_lru_batch_pages, check_migration, check_migration_read, check_translation, DmaBuffers, DmaTransfer, FrameChecker, MigrationInput, MigrationReads};
use crate::cpu::TlbOp;
use cmaemu_abi::trace::{GuestEvent, TraceRecord};

/// The CPU's translation cache as the verifiers see it.
pub trait TlbAccess {
    /// The address space the CPU runs in now (whose user translations its
    /// TLB may hold), None when unknown.
    fn current_asid(&mut self) -> Option<u32>;
    /// Make the CPU's TLB hold `va -> pa` for `asid`, as a CPU that used
    /// the mapping while it was live may still hold it (hardware keeps
    /// translations until they are invalidated; Unicorn's small TLB would
    /// otherwise hide most missing flushes). False when it cannot (another
    /// address space is current: its entries were flushed at the switch).
    fn retain(&mut self, asid: u32, va: u32, pa: u64) -> bool {
        let _ = (asid, va, pa);
        false
    }
}

/// A plain `current_asid()` function (nothing can be retained).
impl<F: FnMut() -> Option<u32>> TlbAccess for F {
    fn current_asid(&mut self) -> Option<u32> {
        self()
    }
}

/// The page in flight since its `migrate_page_begin`, as the CPU's TLB
/// may still hold it: its old translations stay cached until the guest
/// invalidates them (the monitor sees every CP15 TLB invalidate).
#[derive(Clone, Debug)]
struct InFlight {
    old_pfn: u32,
    /// The address space current at the begin: only its user
    /// translations (and kernel ones) can be cached (the guest runs
    /// without ASIDs and invalidates the whole TLB when it switches).
    current: Option<u32>,
    /// A TLBIALL or TLBIASID since the begin.
    all: bool,
    /// Pages invalidated by VA since the begin.
    vas: Vec<u32>,
}

impl InFlight {
    /// The old frame's address if the CPU may still translate `va` of
    /// `asid` to it (its PTE was cleared at the begin, and no invalidate
    /// covering it followed).
    fn stale(&self, old_pfn: u32, asid: u32, va: u32) -> Option<u64> {
        let exposed = va >= 0x8000_0000 || self.current == Some(asid);
        (self.old_pfn == old_pfn && exposed && !self.all && !self.vas.contains(&(va & !0xfff))).then_some((old_pfn as u64) << 12)
    }
}

/// A moved page's content compare, made when its records were drained
/// (or, for a light doorbell, looked at): the kept old content and the new
/// frame, read out only when they differ.
#[derive(Debug)]
enum Settled {
    /// Equal, or nothing to compare with (no capture of that frame).
    Same,
    /// They differ: the old content at the move, and the new frame's
    /// (None: unreadable).
    Differ(Box<[u8; 4096]>, Option<Box<[u8; 4096]>>),
}

impl Settled {
    /// Compare `new_pfn`'s frame with `old_pfn`'s content at the move, when
    /// `capture` (the frame kept copy-on-write) is that frame (a plain
    /// memory compare; both are read out only when they differ).
    fn compare(ram: &GuestRam, capture: Option<u32>, old_pfn: u32, new_pfn: u32) -> Settled {
        let (old_pa, new_pa) = ((old_pfn as u64) << 12, (new_pfn as u64) << 12);
        if capture != Some(old_pfn) || ram.equals_preserved(old_pa, new_pa).unwrap_or(false) {
            return Settled::Same;
        }
        let mut before = Box::new([0u8; 4096]);
        if !ram.read_preserved(old_pa, &mut before) {
            return Settled::Same;
        }
        let mut after = Box::new([0u8; 4096]);
        let readable = ram.read(new_pa, &mut after[..]).is_ok();
        Settled::Differ(before, readable.then_some(after))
    }

    /// The check's `before` and `after` (empty: nothing to compare).
    fn contents(&self) -> (&[u8], &[u8]) {
        match self {
            Settled::Same => (&[], &[]),
            Settled::Differ(b, a) => (&b[..], a.as_deref().map_or(&[][..], |a| &a[..])),
        }
    }
}

/// Doorbells served without a drain ([`Session::light_doorbell`]): the
/// records before `upto` wait in the ring, already looked at — what a
/// drain at each doorbell had to see at that instant is kept here — and
/// are decoded and checked as a [`Batch`]: on the core's thread once half
/// the ring waits ([`Session::ship`]), else at the next full pass
/// ([`Session::catch_up`]).
#[derive(Debug, Default)]
struct Deferred {
    /// The ring position after the last record looked at (None: nothing
    /// waits).
    upto: Option<u32>,
    /// When the last light doorbell rang (the time its drain would have
    /// had).
    at_ns: u64,
    /// Each armed page (its `migrate_page_begin` record's ring position,
    /// its in-flight state from that instant), oldest first.
    arms: std::collections::VecDeque<(u32, InFlight)>,
    /// Each waiting move as its light doorbell saw it, in ring order (a
    /// page's several records share one).
    moves: std::collections::VecDeque<SeenMove>,
    /// The waiting records as the light doorbells read them, in ring order
    /// from the ring's tail (empty at the floor, which reads none), and
    /// how many had the wrong `seq`: the drain that ships them need not
    /// read the ring again (by then its first records are out of the
    /// cache).
    recs: Vec<TraceRecord>,
    bad_seq: u32,
}

/// A move a light doorbell looked at: what its check reads of the guest,
/// read at that instant.
#[derive(Debug)]
struct SeenMove {
    old_pfn: u32,
    new_pfn: u32,
    content: Settled,
    reads: MigrationReads,
}

impl Deferred {
    /// The records before ring position `head` wait, looked at by the
    /// doorbell of `now_ns`.
    fn wait_until(&mut self, head: u32, now_ns: u64) {
        self.upto = Some(head);
        self.at_ns = now_ns;
    }

    /// A light doorbell read the records from ring position `from` on:
    /// `recs` holds the newest first, then the older ones in ring order.
    fn keep(&mut self, from: u32, recs: &[TraceRecord]) {
        let Some((newest, older)) = recs.split_first() else { return };
        for (i, r) in older.iter().chain([newest]).enumerate() {
            self.bad_seq += (r.seq != from.wrapping_add(i as u32)) as u32;
            self.recs.push(*r);
        }
    }
}

impl Batch {
    /// The move `old -> new` as seen (the earlier moves are done with:
    /// moves are checked in ring order).
    fn seen(&mut self, old: u32, new: u32) -> Option<&SeenMove> {
        while self.moves.front().is_some_and(|m| (m.old_pfn, m.new_pfn) != (old, new)) {
            self.moves.pop_front();
        }
        self.moves.front()
    }
}

/// The records light doorbells left, drained from the ring (on the CPU's
/// thread, where the ring's tail is written), with what those doorbells
/// read of the guest at their instants: the core decodes and checks them
/// with the same results as drains at each doorbell, here or on its own
/// thread while the guest runs on ([`Core::run_batch`]: it reads nothing
/// of the guest).
#[derive(Debug)]
struct Batch {
    recs: Vec<TraceRecord>,
    /// The ring position of `recs[0]` (None: the tail was unreadable).
    first_pos: Option<u32>,
    /// The ring position after the last record light doorbells looked at.
    upto: u32,
    /// When the last of those doorbells rang.
    at_ns: u64,
    /// The drain's result: records the guest dropped, or why it failed.
    drained: Result<u64, IntrospectError>,
    arms: std::collections::VecDeque<(u32, InFlight)>,
    moves: std::collections::VecDeque<SeenMove>,
    /// The TLB invalidates issued before `upto`.
    tlbi: std::collections::VecDeque<(u32, TlbOp)>,
}

/// What a frame's pass read of the guest at its instant, for the rest of
/// the pass ([`Core::frame_check`], which reads nothing of the guest).
#[derive(Debug)]
struct FrameRead {
    index: u64,
    now_ns: u64,
    /// The LRU batch the guest publishes (None without checks).
    lru: Option<cmaemu_abi::desc::LruAddRecord>,
}

/// Records a light doorbell may leave in the ring: a page's moves, its
/// TLB maintenance, injections, the next page's begin and the
/// `mm_migrate_pages` tracepoints around a batch of pages (nothing whose
/// handling reads the guest's state or emits counters).
fn may_wait(kind: u16) -> bool {
    use cmaemu_abi::trace::{TR_INJECT, TR_MIGRATE_PAGE, TR_MIGRATE_PAGE_BEGIN, TR_MM_MIGRATE_PAGES, TR_MM_MIGRATE_PAGES_START, TR_TLB_FLUSH};
    matches!(kind, TR_MIGRATE_PAGE | TR_MIGRATE_PAGE_BEGIN | TR_TLB_FLUSH | TR_INJECT | TR_MM_MIGRATE_PAGES | TR_MM_MIGRATE_PAGES_START)
}

/// Records light doorbells may leave waiting: half the ring; past that
/// they are drained and shipped to the core's thread (between two pages'
/// doorbells the guest pushes a few records — the last page's moves and
/// flushes, the next page's begin —: waiting records never crowd out new
/// ones).
fn light_limit(capacity: u32) -> u32 {
    capacity / 2
}

/// An event the stream's reader collects: a violation or an injection.
fn is_notable(e: &Event) -> bool {
    matches!(e.kind, EventKind::Violation(_) | EventKind::Inject { .. })
}

/// Where the core's stand-in for guest RAM lies (see `Core::no_ram`):
/// above any physical address the guest has.
const NO_RAM_BASE: u64 = 1 << 48;

/// Events kept as context for each violation.
pub const RECENT_EVENTS: usize = 16;

/// What a doorbell needs at its own instant, kept on the CPU's thread:
/// the ring, the capture of the page in flight, the records light
/// doorbells looked at, the LRU drain check's episodes and the TLB
/// invalidates not yet placed among the records.
struct Light {
    drainer: RingDrainer,
    /// The old frame kept copy-on-write at the last `migrate_page_begin`
    /// ([`GuestRam::preserve`]). One page migrates at a time.
    capture: Option<u32>,
    /// Doorbells served without a drain (see [`Session::light_doorbell`]).
    deferred: Deferred,
    /// The LRU drain check's episodes (one violation per
    /// `lru_cache_disable()` episode).
    lru: crate::verify::LruDrainEpisodes,
    /// The guest's TLB invalidates not yet placed among the ring's
    /// records: (ring position — the records before it were pushed before
    /// the invalidate —, operation).
    tlbi: std::collections::VecDeque<(u32, TlbOp)>,
    /// The records' buffer of the doorbells, kept between them.
    recs: Vec<TraceRecord>,
    /// The frame the core is at (a check's context).
    frame: u64,
    checks: bool,
    transport_only: bool,
    /// Light doorbells looked at records since the core last heard: its
    /// snapshot is stale.
    dirty: bool,
    /// The old translation of the page in flight, held in the TLB at the
    /// next doorbell or pass unless the guest invalidated it first (see
    /// [`Light::begin_page`]).
    hold: Option<Hold>,
}

/// A translation the CPU may still cache after its PTE was cleared:
/// `va` of `asid` to the old frame at `pa`.
#[derive(Clone, Copy, Debug)]
struct Hold {
    asid: u32,
    va: u32,
    pa: u64,
}

/// The core's thread: it checks the batches the light doorbells ship while
/// the guest runs on, and gives the core back when a pass needs it.
struct Worker {
    jobs: crossbeam_channel::Sender<Job>,
    back: crossbeam_channel::Receiver<(Box<Core>, Result<(), IntrospectError>)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Job {
    /// The core, for the batches that follow.
    Take(Box<Core>),
    Batch(Batch),
    /// The rest of a frame's pass.
    Frame(FrameRead),
    /// Give the core back (with the last batch's error, if one failed).
    Give,
}

/// How long the CPU's thread polls for the core coming back before it
/// sleeps: it has nothing else to do meanwhile, and the thread's usual
/// remainder (the batch in hand) is shorter than a sleep and a wake-up.
const GIVE_POLL: std::time::Duration = std::time::Duration::from_micros(200);

impl Worker {
    fn spawn() -> Option<Worker> {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        let (tx, back) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("cmaemu-verify".into())
            .spawn(move || {
                let (mut core, mut err) = (None::<Box<Core>>, Ok(()));
                for job in rx {
                    match job {
                        Job::Take(c) => core = Some(c),
                        Job::Batch(b) => {
                            if let Some(c) = core.as_mut() {
                                if let Err(e) = c.run_batch(b) {
                                    err = Err(e);
                                }
                            }
                        }
                        Job::Frame(r) => {
                            if let Some(c) = core.as_mut() {
                                c.frame_check(r);
                            }
                        }
                        Job::Give => {
                            if let Some(c) = core.take() {
                                if tx.send((c, std::mem::replace(&mut err, Ok(())))).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            })
            .ok()?;
        Some(Worker { jobs, back, thread: Some(thread) })
    }

    /// The core and its thread's error, once the thread gives them back
    /// (None: the thread is gone).
    fn wait_back(&self) -> Option<(Box<Core>, Result<(), IntrospectError>)> {
        let t = std::time::Instant::now();
        loop {
            match self.back.try_recv() {
                Ok(b) => return Some(b),
                Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
                Err(crossbeam_channel::TryRecvError::Empty) if t.elapsed() < GIVE_POLL => std::hint::spin_loop(),
                Err(crossbeam_channel::TryRecvError::Empty) => return self.back.recv().ok(),
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // the channel closes: the thread ends its loop
        let (closed, _) = crossbeam_channel::unbounded();
        self.jobs = closed;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// See the module doc. The session is two parts: what each doorbell needs
/// at its instant ([`Light`], on the CPU's thread) and the rest, the
/// decoding, the checks and the event stream (the core), which checks the
/// records light doorbells left on a thread of its own while the guest
/// runs on, and comes back for every pass that needs it (in ring order:
/// the same events and violations as a drain at every doorbell).
pub struct Session {
    pub desc_pa: u64,
    light: Light,
    /// None while it works on its thread (see [`Session::core`]).
    core: Option<Box<Core>>,
    worker: Option<Worker>,
    /// The core's snapshot while the core is away (what a light doorbell
    /// looks up in it, layouts and address spaces, changes only at passes).
    away_snap: Option<std::sync::Arc<Snapshot>>,
    /// Why a batch the core checked on its thread failed (reported at the
    /// next pass).
    failed: Option<IntrospectError>,
}

/// The session's decoding and checks (see [`Session`]).
struct Core {
    decoder: Decoder,
    /// Live DMA buffers (from `dma_alloc`/`dma_free` records).
    buffers: DmaBuffers,
    recent: RecentEvents,
    /// Events emitted since the last [`Session::take_events`] or
    /// [`Session::hand_back`]: `out[fresh..]`; `out[..fresh]` is a lent
    /// stream (see [`Session::lend`]).
    out: Vec<Event>,
    fresh: usize,
    lent: bool,
    /// The ownership checks, kept up to date from frame to frame (None
    /// until the first, and after a frame without checks).
    frames: Option<FrameChecker>,
    /// How many of the ranges at the front of `changed` `frames` has
    /// judged (at a prompt): the next check judges the rest.
    frames_judged: usize,
    snap: std::sync::Arc<Snapshot>,
    dirty: bool,
    frame: u64,
    /// Violations found so far.
    violations: u64,
    /// Violation and injection events emitted so far (what the stream's
    /// reader looks for: none new, nothing to look at).
    notable: u64,
    /// Run the verifiers (false: only decode and emit events, for a trace
    /// of a run without verification).
    checks: bool,
    /// Page states and pageblock types last emitted (frame events carry
    /// only what changed since).
    last_states: Option<Vec<u8>>,
    last_mts: Option<Vec<u8>>,
    /// The page array's first pfn when `last_states` was computed.
    last_base: Option<u32>,
    /// Page-array index ranges re-read since `last_states` was computed
    /// (outside them no record and no free mark changed).
    changed: Vec<std::ops::Range<usize>>,
    /// The page states now (as of the last prompt or frame): a frame
    /// event's are `last_states` brought up to these.
    codes_now: Codes,
    /// How many of the ranges at the front of `changed` `codes_now` has
    /// seen.
    codes_done: usize,
    /// `codes_now` is `last_states` (no prompt since the last frame).
    codes_synced: bool,
    /// The changes from `last_states` to `codes_now`, as the next frame's
    /// runs, worked out at each prompt (see [`Owed`]).
    owed: Owed,
    /// The CMA areas as `last_states` saw them (their bitmaps decide the
    /// codes of some pages).
    codes_cma: Vec<crate::introspect::snapshot::CmaArea>,
    /// Frames whose page migrated away: old -> (new, when); forgotten when
    /// the frame is handed to a device.
    moved: MovedFrames,
    /// State violations already reported (see `report_state`).
    seen_state: std::collections::HashSet<(Check, Option<u32>, Option<u32>, String)>,
    /// Why each `cma_alloc` retried or failed (`crate::explain`).
    explainer: crate::explain::Tracker,
    /// Run the cause finder (false: no `cma_cause` events or lines).
    explain: bool,
    /// Drain the ring and nothing else (`RunOptions::transport_only`):
    /// no record decoded, no frame boundary's re-read, nothing checked.
    transport_only: bool,
    /// The page migrating now (one at a time), for the TLB check.
    in_flight: Option<InFlight>,
    /// Buffer of [`Core::handle_decoded`], kept between passes.
    evs: Vec<Event>,
    /// Guest RAM as a batch's records see it: none (a RAM that holds no
    /// guest address; what they need of the guest was read at their
    /// doorbells, and the cause finder reads nothing for them).
    no_ram: GuestRam,
}

/// Where a pass's records come from, and what it may read of the guest.
enum Pass<'a> {
    /// Drained now, the guest stopped: it reads the guest as of now.
    Now { ram: &'a GuestRam, light: &'a mut Light, tlb: &'a mut dyn TlbAccess },
    /// Left by light doorbells: what their checks read of the guest was
    /// read at their doorbells; nothing else is read.
    Settle(&'a mut Batch),
}

impl Pass<'_> {
    /// Guest RAM now (a batch's records need none: an error names the
    /// record that would).
    fn ram(&self, kind: u16) -> Result<&GuestRam, IntrospectError> {
        match self {
            Pass::Now { ram, .. } => Ok(ram),
            Pass::Settle(_) => Err(IntrospectError::Ring(format!("record kind {kind} waited for a batch but needs the guest's state of its own instant"))),
        }
    }

    /// The TLB invalidates waiting to be placed.
    fn tlbi(&mut self) -> &mut std::collections::VecDeque<(u32, TlbOp)> {
        match self {
            Pass::Now { light, .. } => &mut light.tlbi,
            Pass::Settle(b) => &mut b.tlbi,
        }
    }
}

impl Session {
    /// Validate the descriptor at `desc_pa` and its ring.
    pub fn attach(ram: &GuestRam, desc_pa: u64) -> Result<Session, IntrospectError> {
        let snap = Snapshot::read(ram, desc_pa)?;
        let drainer = RingDrainer::new(ram, &snap.desc)?;
        let moved = MovedFrames::new(snap.desc.base_pfn, snap.desc.nr_pages);
        let no_ram = GuestRam::new(NO_RAM_BASE, 4096).map_err(|e| IntrospectError::Ring(format!("no memory for the checks' thread: {e}")))?;
        let core = Core {
            decoder: Decoder::new(snap.area_names()),
            buffers: DmaBuffers::default(),
            recent: RecentEvents::new(RECENT_EVENTS),
            out: Vec::new(),
            fresh: 0,
            lent: false,
            frames: None,
            frames_judged: 0,
            snap: std::sync::Arc::new(snap),
            dirty: false,
            frame: 0,
            violations: 0,
            notable: 0,
            checks: true,
            last_states: None,
            last_mts: None,
            codes_now: Codes::default(),
            codes_done: 0,
            codes_synced: false,
            owed: Owed::default(),
            changed: Vec::new(),
            last_base: None,
            codes_cma: Vec::new(),
            seen_state: Default::default(),
            moved,
            explainer: Default::default(),
            explain: true,
            transport_only: false,
            in_flight: None,
            evs: Vec::new(),
            no_ram,
        };
        let light = Light {
            drainer,
            capture: None,
            deferred: Deferred::default(),
            lru: Default::default(),
            tlbi: std::collections::VecDeque::new(),
            recs: Vec::new(),
            frame: 0,
            checks: true,
            transport_only: false,
            dirty: false,
            hold: None,
        };
        Ok(Session { desc_pa, light, core: Some(Box::new(core)), worker: None, away_snap: None, failed: None })
    }

    /// Run the verifiers (false: only decode and emit events), the cause
    /// finder, or only drain the ring (`RunOptions::transport_only`).
    pub fn set_modes(&mut self, checks: bool, explain: bool, transport_only: bool) {
        let c = self.core();
        (c.checks, c.explain, c.transport_only) = (checks, explain, transport_only);
        (self.light.checks, self.light.transport_only) = (checks, transport_only);
        // the core's thread, ready before the first batch (not started in
        // the middle of a migration)
        if checks && !transport_only && self.worker.is_none() {
            self.worker = Worker::spawn();
        }
    }

    /// Violations found so far.
    pub fn violations(&mut self) -> u64 {
        self.core().violations
    }

    /// Violation and injection events emitted so far.
    pub fn notable(&mut self) -> u64 {
        self.core().notable
    }

    /// The core, back from its thread when it works there (after every
    /// batch shipped to it), told what light doorbells did since.
    fn core(&mut self) -> &mut Core {
        if self.core.is_none() {
            self.away_snap = None;
            let w = self.worker.as_mut().expect("the core is away only with a worker");
            let back = w.jobs.send(Job::Give).ok().and_then(|_| w.wait_back());
            match back {
                Some((core, r)) => {
                    self.core = Some(core);
                    if let Err(e) = r {
                        self.failed = Some(e);
                    }
                }
                // the thread died: its panic is the run's
                None => match self.worker.take().and_then(|mut w| w.thread.take()).map(|t| t.join()) {
                    Some(Err(p)) => std::panic::resume_unwind(p),
                    _ => unreachable!("the checks' thread ended without its core"),
                },
            }
        }
        let core = self.core.as_mut().expect("the core is here");
        core.dirty |= std::mem::take(&mut self.light.dirty);
        core
    }

    /// The core and the light part, the core back home.
    fn both(&mut self) -> (&mut Core, &mut Light) {
        self.core();
        (self.core.as_mut().expect("the core is here"), &mut self.light)
    }

    /// Bring the core home (after the batches shipped to it): what it found
    /// can be read.
    pub fn join(&mut self) {
        self.core();
    }

    /// Emit the guest's memory layout (zones, CMA areas, pageblock size):
    /// what a report draws its map with.
    pub fn emit_layout(&mut self, now_ns: u64) {
        self.core().emit_layout(now_ns);
    }

    /// Emit an event that did not come from the guest's ring (board
    /// notes such as displayed frames), in stream order.
    pub fn note(&mut self, e: Event) {
        self.core().emit(e);
    }

    /// The latest snapshot (re-read if the guest changed state since).
    pub fn snapshot(&mut self, ram: &GuestRam) -> Result<&Snapshot, IntrospectError> {
        self.core().snapshot(ram)
    }

    /// The snapshot as it stands, without re-reading anything.
    pub fn last_snapshot(&mut self) -> &Snapshot {
        &self.core().snap
    }

    /// See [`Core::settle`].
    pub fn settle(&mut self, ram: &GuestRam) -> Result<(), IntrospectError> {
        self.core().settle(ram)
    }

    /// The events emitted since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.core().take_events()
    }

    /// See [`Core::lend`].
    pub fn lend(&mut self, stream: &mut Vec<Event>) {
        self.core().lend(stream);
    }

    /// See [`Core::drop_stream`].
    pub fn drop_stream(&mut self) {
        self.core().drop_stream();
    }

    /// The stream the session holds (see [`Core::lend`]); None while the
    /// core works on its thread (every pass and [`Session::join`] bring it
    /// back).
    pub fn stream(&self) -> Option<&[Event]> {
        self.core.as_ref()?.stream()
    }

    /// Whether the core works on its thread now.
    pub fn away(&self) -> bool {
        self.core.is_none()
    }

    /// See [`Core::hand_back`].
    pub fn hand_back(&mut self, dst: &mut Vec<Event>) -> usize {
        self.core().hand_back(dst)
    }

    /// The `cmaemu:` console lines of allocations that have returned.
    pub fn take_console_lines(&mut self) -> Vec<String> {
        self.core().take_console_lines()
    }

    /// One DMA master transfer.
    pub fn dma(&mut self, ram: &GuestRam, t: DmaTransfer, now_ns: u64, dur_ns: u64) -> Result<(), IntrospectError> {
        self.core().dma(ram, t, now_ns, dur_ns)
    }

    /// The CPU is about to cache a user translation `va -> pa` of `asid`.
    pub fn translation(&mut self, ram: &GuestRam, asid: u32, va: u32, pa: u64, now_ns: u64) -> Result<(), IntrospectError> {
        self.core().translation(ram, asid, va, pa, now_ns)
    }

    /// Flush a migrated page still waiting for continuation records.
    pub fn finish(&mut self) {
        self.core().finish();
    }

    /// The guest invalidated TLB entries (reported by the CPU as it
    /// happens): placed after the records pushed so far.
    pub fn tlb_maintenance(&mut self, ram: &GuestRam, op: TlbOp) {
        if !self.light.checks {
            return;
        }
        self.light.invalidated(op);
        match self.light.drainer.head(ram) {
            Some(pos) => self.light.tlbi.push_back((pos, op)),
            None => self.core().apply_tlbi(op),
        }
    }

    /// Make the TLB hold the old translation of the page in flight, if
    /// the guest did not invalidate it since its begin (see
    /// [`Light::begin_page`]): first in every pass and doorbell.
    pub fn hold_translation(&mut self, tlb: &mut dyn TlbAccess) {
        self.light.hold_translation(tlb);
    }

    /// Drain the ring and handle every record. `tlb` is the CPU's
    /// translation cache: at `migrate_page_begin` the old translation is
    /// retained in it, as a real TLB may hold it until the guest's
    /// invalidate (which the TLB check then looks for).
    pub fn service(&mut self, ram: &GuestRam, now_ns: u64, tlb: &mut dyn TlbAccess) -> Result<(), IntrospectError> {
        self.hold_translation(tlb);
        self.catch_up(ram)?;
        let (core, light) = self.both();
        // the records' buffer is kept between passes (no allocation per
        // doorbell)
        let mut recs = std::mem::take(&mut light.recs);
        recs.clear();
        let first_pos = light.drainer.tail(ram);
        let drained = light.drainer.drain(ram, &mut recs);
        let r = core.handle_drained(&mut Pass::Now { ram, light: &mut *light, tlb }, now_ns, &recs, first_pos, None, drained);
        light.recs = recs;
        r
    }

    /// A doorbell at a page's `migrate_page_begin`, served without a
    /// drain when what the drain would do now is only what must happen
    /// now: the records since the last doorbell are looked at in place —
    /// each move's new frame compared with the old frame's content kept
    /// since its begin, the LRU batch checked —, then the new page is
    /// armed (its old frame kept copy-on-write, its old translation held in
    /// the TLB, the address space current now noted). Decoding, events and
    /// every other check wait, with the same results: for the next full
    /// pass ([`Session::catch_up`]), or, once half the ring waits, for the
    /// core's thread, the waiting records drained now
    /// ([`Session::ship`]). False (nothing done): serve it with a drain.
    pub fn light_doorbell(&mut self, ram: &GuestRam, now_ns: u64, tlb: &mut dyn TlbAccess) -> bool {
        self.hold_translation(tlb);
        let l = &mut self.light;
        if !l.checks && !l.transport_only {
            return false;
        }
        let (Some(head), Some(tail)) = (l.drainer.head(ram), l.drainer.tail(ram)) else { return false };
        let waiting = head.wrapping_sub(tail);
        let from = l.deferred.upto.unwrap_or(tail);
        let over = waiting > light_limit(l.drainer.capacity());
        if waiting == 0 || (over && l.transport_only) || head.wrapping_sub(from) > waiting || head == from {
            return false;
        }
        // the core's snapshot, here or (while the core is away) shared
        let snap: &Snapshot = match (&self.core, &self.away_snap) {
            (Some(c), _) => &c.snap,
            (None, Some(s)) => s,
            (None, None) => return false,
        };
        // only a page's begin rings a light doorbell: the newest record
        // is looked at first (any other doorbell is told apart cheaply)
        let mut recs = std::mem::take(&mut l.recs);
        recs.clear();
        let newest = match l.drainer.peek(ram, head.wrapping_sub(1), head, &mut recs) {
            true => recs.first().map(|r| r.kind),
            false => None,
        };
        let ok = match newest {
            Some(cmaemu_abi::trace::TR_MIGRATE_PAGE_BEGIN) => l.transport_only || l.light_records(snap, ram, now_ns, tlb, from, head, &mut recs),
            // the last page of a batch, flushed (its move checked at once)
            Some(cmaemu_abi::trace::TR_MIGRATE_PAGE) => !l.transport_only && l.light_flush(snap, ram, now_ns, from, head, &mut recs),
            _ => false,
        };
        if ok && !l.transport_only {
            l.deferred.keep(from, &recs);
        }
        l.recs = recs;
        if ok && l.transport_only {
            // nothing is looked at: the records wait for the next drain
            l.deferred.wait_until(head, now_ns);
        }
        if ok && over {
            self.ship(ram);
        }
        ok
    }

    /// Drain the records light doorbells left and have the core check
    /// them on its thread while the guest runs on (here when no thread
    /// can be had).
    fn ship(&mut self, ram: &GuestRam) {
        if let Some(b) = self.light.take_batch(ram) {
            self.send(Job::Batch(b));
        }
    }

    /// Have the core do `job` on its thread while the guest runs on (here
    /// when no thread can be had).
    fn send(&mut self, job: Job) {
        if self.worker.is_none() {
            self.worker = Worker::spawn();
        }
        let Some(w) = &self.worker else { return self.run_here(job) };
        if let Some(mut core) = self.core.take() {
            core.dirty |= std::mem::take(&mut self.light.dirty);
            self.away_snap = Some(core.snap.clone());
            // (the thread is gone: its panic comes out at the next pass)
            if let Err(crossbeam_channel::SendError(Job::Take(core))) = w.jobs.send(Job::Take(core)) {
                self.core = Some(core);
            }
        }
        if let Err(crossbeam_channel::SendError(job)) = w.jobs.send(job) {
            if self.core.is_some() {
                self.run_here(job);
            }
        }
    }

    /// Do a batch's or a frame's job on this thread (a batch's error
    /// reported at the next pass).
    fn run_here(&mut self, job: Job) {
        match job {
            Job::Batch(b) => {
                if let Err(e) = self.core().run_batch(b) {
                    self.failed = Some(e);
                }
            }
            Job::Frame(r) => self.core().frame_check(r),
            Job::Take(_) | Job::Give => {}
        }
    }

    /// Decode and check the records light doorbells left in the ring, as
    /// drains at those doorbells would have (after the batches the core's
    /// thread was given); an error of one of those is reported here.
    pub fn catch_up(&mut self, ram: &GuestRam) -> Result<(), IntrospectError> {
        let batch = self.light.take_batch(ram);
        let r = match batch {
            Some(b) => self.core().run_batch(b),
            None => {
                self.core();
                Ok(())
            }
        };
        match self.failed.take() {
            Some(e) => Err(e),
            None => r,
        }
    }

    /// Frame `index` starts: drain, re-read, emit the frame and counters,
    /// check integrity (stable snapshots) and that no PTE maps a free frame.
    /// With `away`, the checks that read nothing of the guest are done on
    /// the core's thread while the guest runs on (what they find is
    /// collected at the next pass).
    pub fn frame_boundary(&mut self, ram: &GuestRam, index: u64, now_ns: u64, tlb: &mut dyn TlbAccess, away: bool) -> Result<(), IntrospectError> {
        self.service(ram, now_ns, tlb)?;
        self.light.frame = index;
        if let Some(read) = self.core().frame_read(ram, index, now_ns)? {
            match away {
                true => self.send(Job::Frame(read)),
                false => self.core().frame_check(read),
            }
        }
        Ok(())
    }

    /// The run is over: drain the ring and run every state check on the
    /// final snapshot (a bug in the last moments before the exit is caught
    /// too). A snapshot taken in the middle of an mm operation (the run
    /// stopped there) is not stable: then only the checks that hold at
    /// any instant run.
    pub fn final_check(&mut self, ram: &GuestRam, now_ns: u64, tlb: &mut dyn TlbAccess) -> Result<(), IntrospectError> {
        self.service(ram, now_ns, tlb)?;
        self.core().final_check(ram, now_ns)
    }
}

impl Light {
    /// Where and when a check runs (see [`Core::ctx`]).
    fn ctx(&self, at_ns: u64) -> CheckCtx {
        CheckCtx { frame: self.frame, at_ns, recent: Vec::new() }
    }

    /// [`Session::light_doorbell`] past its first look: `recs` holds the
    /// newest record (the new page's begin); the older ones are appended.
    #[allow(clippy::too_many_arguments)]
    fn light_records(&mut self, snap: &Snapshot, ram: &GuestRam, now_ns: u64, tlb: &mut dyn TlbAccess, from: u32, head: u32, recs: &mut Vec<TraceRecord>) -> bool {
        // moves and flushes, then the new page's begin (looked at first)
        if !self.drainer.peek(ram, from, head.wrapping_sub(1), recs) {
            return false;
        }
        let Some((begin, moves)) = recs.split_first() else { return false };
        let Ok(GuestEvent::MigratePageBegin { old_pfn, first, .. }) = begin.decode() else { return false };
        if !self.look(snap, ram, now_ns, moves.iter()) {
            return false;
        }
        let in_flight = self.begin_page(ram, old_pfn, first, tlb);
        self.deferred.arms.push_back((head.wrapping_sub(1), in_flight));
        self.deferred.wait_until(head, now_ns);
        self.dirty = true;
        true
    }

    /// A doorbell right after a page's move (the last page of a batch,
    /// flushed): looked at as [`Light::light_records`] does, nothing to arm.
    /// `recs` holds the newest record (the move).
    fn light_flush(&mut self, snap: &Snapshot, ram: &GuestRam, now_ns: u64, from: u32, head: u32, recs: &mut Vec<TraceRecord>) -> bool {
        if !self.drainer.peek(ram, from, head.wrapping_sub(1), recs) {
            return false;
        }
        let Some((newest, older)) = recs.split_first() else { return false };
        if !self.look(snap, ram, now_ns, older.iter().chain([newest])) {
            return false;
        }
        self.deferred.wait_until(head, now_ns);
        self.dirty = true;
        true
    }

    /// Look at the waiting records `recs` (in ring order) as a drain now
    /// would: each move's new frame compared with the old frame's content,
    /// what its check reads of the guest read, the LRU batch checked.
    /// False (nothing kept): one must be drained now.
    fn look<'r>(&mut self, snap: &Snapshot, ram: &GuestRam, now_ns: u64, recs: impl Iterator<Item = &'r TraceRecord>) -> bool {
        // each move decoded once: (old, new, asid, its VAs)
        let mut seen: smallvec::SmallVec<[(u32, u32, u32, u8, [u32; 4]); 2]> = smallvec::SmallVec::new();
        for r in recs {
            if !may_wait(r.kind) || r.kind == cmaemu_abi::trace::TR_MIGRATE_PAGE_BEGIN {
                return false;
            }
            if r.kind == cmaemu_abi::trace::TR_MIGRATE_PAGE {
                match r.decode() {
                    // an address space the last snapshot lacks: the drain re-reads it now
                    Ok(GuestEvent::MigratePage { old_pfn, new_pfn, asid, nr_vas, vas, .. }) if snap.mmu_regs(asid).is_some() => seen.push((old_pfn, new_pfn, asid, nr_vas, vas)),
                    _ => return false,
                }
            }
        }
        // the LRU batch, as the drain checks it after its records (only
        // a clean check may wait: a violation is reported by the drain)
        if let Some(rec) = snap.read_lru_add(ram) {
            let mut lru = self.lru.clone();
            if !lru.check(&rec, &self.ctx(now_ns)).is_empty() {
                return false;
            }
            self.lru = lru;
        }
        // each move's check reads the guest now, as the drain would
        for (old_pfn, new_pfn, asid, nr_vas, vas) in seen {
            if self.deferred.moves.back().is_none_or(|m| (m.old_pfn, m.new_pfn) != (old_pfn, new_pfn)) {
                let content = Settled::compare(ram, self.capture, old_pfn, new_pfn);
                let reads = MigrationReads::pages(snap, ram, old_pfn, new_pfn);
                self.deferred.moves.push_back(SeenMove { old_pfn, new_pfn, content, reads });
            }
            if let Some(m) = self.deferred.moves.back_mut() {
                m.reads.walk(snap, ram, asid, &vas[..(nr_vas as usize).min(vas.len())]);
            }
        }
        true
    }

    /// A page's migration begins: keep its old frame copy-on-write and
    /// have the TLB hold its old translation; its in-flight state from now.
    fn begin_page(&mut self, ram: &GuestRam, old_pfn: u32, first: Option<(u32, u32)>, tlb: &mut dyn TlbAccess) -> InFlight {
        // (the last page's, if still due)
        self.hold_translation(tlb);
        // one page migrates at a time: older captures are done (a shared
        // page's moves, one per address space, all use the same capture).
        // The old frame's content is kept copy-on-write: nothing is copied
        // unless it is written before its check.
        self.capture = ram.preserve((old_pfn as u64) << 12).then_some(old_pfn);
        // The PTE is cleared but not yet flushed: a real TLB may still hold
        // the old translation. Ours holds it unless the guest's flush
        // removes it first: it is put in at the next doorbell or pass (the
        // page's copy in between does not use the user VA) when no
        // invalidate covered it — a guest that flushes as it should costs
        // no TLB fill per page.
        self.hold = first.map(|(asid, va)| Hold { asid, va, pa: (old_pfn as u64) << 12 });
        InFlight { old_pfn, current: tlb.current_asid(), all: false, vas: Vec::new() }
    }

    /// Put the held translation in the TLB (see [`Session::hold_translation`]).
    fn hold_translation(&mut self, tlb: &mut dyn TlbAccess) {
        if let Some(h) = self.hold.take() {
            tlb.retain(h.asid, h.va, h.pa);
        }
    }

    /// The guest invalidated TLB entries: a held translation they cover is
    /// not put in.
    fn invalidated(&mut self, op: TlbOp) {
        let covered = match (op, self.hold) {
            (_, None) => false,
            (TlbOp::All | TlbOp::Asid(_), _) => true,
            (TlbOp::Va { va, .. } | TlbOp::VaAllAsids(va), Some(h)) => va & !0xfff == h.va & !0xfff,
        };
        if covered {
            self.hold = None;
        }
    }

    /// Drain the records light doorbells left (the ring's tail moves on
    /// here, on the CPU's thread), with what they read of the guest and
    /// the TLB invalidates issued before them: a batch for the core
    /// (None: none wait).
    fn take_batch(&mut self, ram: &GuestRam) -> Option<Batch> {
        let upto = self.deferred.upto.take()?;
        let first_pos = self.drainer.tail(ram);
        // (the buffers sized as the last batch's: no growing page by page)
        let cap = upto.wrapping_sub(first_pos.unwrap_or(upto)).min(self.drainer.capacity()) as usize;
        let kept = std::mem::replace(&mut self.deferred.recs, Vec::with_capacity(cap));
        let bad_seq = std::mem::take(&mut self.deferred.bad_seq);
        // the records the light doorbells read are all that wait before `upto`
        let read = match (first_pos, self.drainer.head(ram)) {
            (Some(t), Some(h)) => !kept.is_empty() && upto.wrapping_sub(t) as usize == kept.len() && upto.wrapping_sub(t) <= h.wrapping_sub(t),
            _ => false,
        };
        let (recs, drained) = if read {
            let drained = self.drainer.consume(ram, kept.len() as u32, bad_seq);
            (if drained.is_ok() { kept } else { Vec::new() }, drained)
        } else {
            let mut recs = Vec::with_capacity(cap);
            let drained = match first_pos {
                Some(t) => self.drainer.drain_max(ram, upto.wrapping_sub(t).min(self.drainer.capacity()), &mut recs),
                None => self.drainer.drain(ram, &mut recs),
            };
            (recs, drained)
        };
        let mut tlbi = std::collections::VecDeque::with_capacity(self.tlbi.len());
        while let Some(&(q, _)) = self.tlbi.front() {
            if (upto.wrapping_sub(q) as i32) < 0 {
                break;
            }
            tlbi.extend(self.tlbi.pop_front());
        }
        let d = &mut self.deferred;
        let (na, nm) = (d.arms.len(), d.moves.len());
        let arms = std::mem::replace(&mut d.arms, std::collections::VecDeque::with_capacity(na));
        let moves = std::mem::replace(&mut d.moves, std::collections::VecDeque::with_capacity(nm));
        Some(Batch { recs, first_pos, upto, at_ns: self.deferred.at_ns, drained, arms, moves, tlbi })
    }
}

impl Core {
    /// Emit the guest's memory layout (zones, CMA areas, pageblock size):
    /// what a report draws its map with.
    pub fn emit_layout(&mut self, now_ns: u64) {
        let l = crate::trace::Layout::of(&self.snap);
        self.emit(Event { ts_ns: now_ns, frame: self.frame, kind: EventKind::Layout(Box::new(l)) });
    }

    /// The latest snapshot (re-read if the guest changed state since).
    pub fn snapshot(&mut self, ram: &GuestRam) -> Result<&Snapshot, IntrospectError> {
        if self.dirty {
            std::sync::Arc::make_mut(&mut self.snap).reread_tracked(ram, &mut self.changed)?;
            self.dirty = false;
        }
        Ok(&self.snap)
    }

    /// The guest waits at its prompt: re-read what the last command
    /// changed now (the page-array windows it wrote, known from RAM's
    /// dirty log even when it pushed no record), so that the next reader
    /// of the state — a check in the next command — does not pay for the
    /// bookkeeping of this one's writes.
    pub fn settle(&mut self, ram: &GuestRam) -> Result<(), IntrospectError> {
        if self.transport_only {
            return Ok(());
        }
        std::sync::Arc::make_mut(&mut self.snap).reread_tracked(ram, &mut self.changed)?;
        self.dirty = false;
        // what the frame checks and the page states have not seen yet
        // (one of them may have seen more: judging or computing a page
        // again changes nothing), each page once
        let from = self.frames_judged.min(self.codes_done);
        let tail = crate::introspect::snapshot::merge_ranges(self.changed[from..].to_vec());
        // the frame checks' tables and judgements: the next check judges
        // only what changes from here on, and reports as it would have
        // (findings are reported at frames only)
        if let Some(f) = &mut self.frames {
            f.catch_up(&self.snap, &tail);
        }
        // the page states (emitted at the next frame, as what changed
        // since the last one)
        let moved = self.codes_now.update(&self.snap, &tail);
        self.owe(moved);
        self.codes_synced = false;
        // the ranges kept merged (the command's many windows are not
        // sorted again at the frame; those before `from` were merged at
        // the last prompt)
        self.changed.truncate(from);
        self.changed.extend(tail);
        self.changed = crate::introspect::snapshot::merge_ranges(std::mem::take(&mut self.changed));
        (self.frames_judged, self.codes_done) = (self.changed.len(), self.changed.len());
        Ok(())
    }

    /// Bring the owed runs up to `codes_now`, which changed only in
    /// `moved` since they were last brought up (None: anywhere).
    fn owe(&mut self, moved: Option<Vec<std::ops::Range<usize>>>) {
        let base = self.codes_now.base.unwrap_or(0);
        let last = self.last_states.as_deref().filter(|l| l.len() == self.codes_now.codes.len() && self.last_base == Some(base));
        match last {
            Some(last) => {
                self.owed.advance(base, moved.as_deref(), &self.codes_now.codes, last);
            }
            None => self.owed = Owed::default(),
        }
    }

    /// Where and when a check runs. Its `recent` stays empty: the events
    /// before a violation are formatted only when there is one (see
    /// [`Session::with_recent`]), not for every check.
    fn ctx(&self, at_ns: u64) -> CheckCtx {
        CheckCtx { frame: self.frame, at_ns, recent: Vec::new() }
    }

    /// Give `vs` the events just before them: call right after the check
    /// that found them, before emitting anything else.
    fn with_recent(&self, mut vs: Vec<Violation>) -> Vec<Violation> {
        if !vs.is_empty() {
            let recent = self.recent.to_vec_with(&self.out[self.fresh..]);
            for v in &mut vs {
                v.recent_events = recent.clone();
            }
        }
        vs
    }

    /// Emit `e`: it joins `out` (the recent-events ring gets it only when
    /// it leaves the session).
    fn emit(&mut self, e: Event) {
        self.notable += is_notable(&e) as u64;
        self.out.push(e);
    }

    /// The events emitted since the last hand-over leave `out[fresh..]`:
    /// the ring keeps the last ones (at most its length copied, not every
    /// event).
    fn handing_over(&mut self) {
        self.recent.extend_from(&self.out[self.fresh..]);
    }

    /// The events emitted since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.handing_over();
        self.out.split_off(self.fresh)
    }

    /// Hold the run's event stream: the session's events are appended to
    /// it in place until [`Session::hand_back`] (each event is written
    /// once, where it stays; while the session holds the stream the events
    /// before a violation are read from it, nothing is copied for them).
    /// Events emitted before the loan follow the stream. A no-op while the
    /// session holds one.
    pub fn lend(&mut self, stream: &mut Vec<Event>) {
        if self.lent {
            return;
        }
        let mine = std::mem::replace(&mut self.out, std::mem::take(stream));
        self.fresh = self.out.len();
        self.out.extend(mine);
        self.lent = true;
    }

    /// Drop the stream the session holds (its reader counted every event),
    /// keeping the last of the session's events as violations' context; the
    /// session goes on holding the now empty stream. A no-op while it holds
    /// none (its events were not read yet).
    pub fn drop_stream(&mut self) {
        if !self.lent {
            return;
        }
        self.handing_over();
        self.out.clear();
        self.fresh = 0;
    }

    /// The stream the session holds (see [`Session::lend`]).
    pub fn stream(&self) -> Option<&[Event]> {
        self.lent.then_some(&self.out[..])
    }

    /// Give the stream back into `dst` (empty since the loan), or move the
    /// events emitted since the last call to the end of `dst`, in order;
    /// returns where the session's events start in `dst`.
    pub fn hand_back(&mut self, dst: &mut Vec<Event>) -> usize {
        self.handing_over();
        let start = if !self.lent {
            let start = dst.len();
            dst.append(&mut self.out);
            start
        } else if dst.is_empty() {
            std::mem::swap(&mut self.out, dst);
            self.fresh
        } else {
            // something was added to `dst` during the loan: after the
            // stream as lent, before the session's events
            let mut stream = std::mem::take(&mut self.out);
            let new = stream.split_off(self.fresh);
            stream.append(dst);
            let start = stream.len();
            stream.extend(new);
            *dst = stream;
            start
        };
        self.fresh = 0;
        self.lent = false;
        start
    }

    fn report(&mut self, vs: Vec<Violation>) {
        for v in vs {
            self.violations += 1;
            let e = Event { ts_ns: v.at_ns, frame: v.frame, kind: EventKind::Violation(Box::new(v)) };
            self.emit(e);
        }
    }

    fn apply_tlbi(&mut self, op: TlbOp) {
        if let Some(f) = &mut self.in_flight {
            match op {
                TlbOp::All | TlbOp::Asid(_) => f.all = true,
                TlbOp::Va { va, .. } | TlbOp::VaAllAsids(va) => f.vas.push(va & !0xfff),
            }
        }
    }

    /// Apply the invalidates issued before the record at ring position
    /// `pos` (all of them when None).
    fn apply_tlbi_before(&mut self, pass: &mut Pass, pos: Option<u32>) {
        // oldest first (positions are free-running: compared by distance)
        let queue = pass.tlbi();
        while let Some(&(q, op)) = queue.front() {
            if pos.is_some_and(|p| (p.wrapping_sub(q) as i32) < 0) {
                break;
            }
            queue.pop_front();
            self.apply_tlbi(op);
        }
    }

    /// Handle records drained from the ring (`drained`: the drain's
    /// result); `upto`: they are those light doorbells left, before that
    /// position.
    fn handle_drained(&mut self, pass: &mut Pass, now_ns: u64, recs: &[TraceRecord], first_pos: Option<u32>, upto: Option<u32>, drained: Result<u64, IntrospectError>) -> Result<(), IntrospectError> {
        match drained {
            Ok(0) => {}
            Ok(n) => self.emit(Event { ts_ns: now_ns, frame: self.frame, kind: EventKind::RingLoss { lost: n } }),
            Err(e) => {
                self.emit(Event { ts_ns: now_ns, frame: self.frame, kind: EventKind::RingLoss { lost: 0 } });
                // (the invalidates are placed before any later record
                // all the same)
                self.apply_tlbi_before(pass, upto);
                return Err(e);
            }
        }
        if recs.is_empty() || self.transport_only {
            self.apply_tlbi_before(pass, upto);
            return Ok(());
        }
        self.dirty = true;
        self.handle_records(pass, now_ns, recs, first_pos, upto)
    }

    /// Decode and check a batch of records light doorbells left, as
    /// drains at those doorbells would have: with what those doorbells
    /// read of the guest, reading nothing of it now (it may run on).
    fn run_batch(&mut self, mut b: Batch) -> Result<(), IntrospectError> {
        let recs = std::mem::take(&mut b.recs);
        let drained = std::mem::replace(&mut b.drained, Ok(0));
        let (at_ns, first_pos, upto) = (b.at_ns, b.first_pos, b.upto);
        self.handle_drained(&mut Pass::Settle(&mut b), at_ns, &recs, first_pos, Some(upto), drained)
    }

    fn handle_records(&mut self, pass: &mut Pass, now_ns: u64, recs: &[TraceRecord], first_pos: Option<u32>, upto: Option<u32>) -> Result<(), IntrospectError> {
        let mut alloc_activity = false;
        for (i, r) in recs.iter().enumerate() {
            self.apply_tlbi_before(pass, first_pos.map(|p| p.wrapping_add(i as u32)));
            let decoded = r.decode().ok();
            // decoded straight into the stream (see `handle_decoded`)
            let from = self.out.len();
            self.decoder.push_decoded(r, decoded, self.frame, &mut self.out);
            self.notable += self.out[from..].iter().filter(|e| is_notable(e)).count() as u64;
            let found = match &decoded {
                Some(ge) if self.explain => self.explain(pass, r.kind, ge)?,
                _ => None,
            };
            if let Some(ge) = decoded {
                self.buffers.on_event(&ge);
                match ge {
                    GuestEvent::DmaAlloc { pfn, count, errorno: 0, .. } => {
                        self.moved.forget(pfn as u32..(pfn as u32).saturating_add(count));
                    }
                    GuestEvent::MigratePage { old_pfn, new_pfn, .. } if self.checks => {
                        self.moved.remove(new_pfn);
                        self.moved.insert(old_pfn, new_pfn, r.ts_ns);
                    }
                    _ => {}
                }
                if let (true, GuestEvent::MigratePageBegin { old_pfn, first, .. }) = (self.checks, ge) {
                    // armed now, or at its light doorbell (each waiting
                    // page's begin rang one)
                    let pos = first_pos.map(|p| p.wrapping_add(i as u32));
                    let f = match pass {
                        Pass::Now { ram, light, tlb } => light.begin_page(ram, old_pfn, first, &mut **tlb),
                        Pass::Settle(b) => match b.arms.front() {
                            Some(&(p, _)) if Some(p) == pos => b.arms.pop_front().map(|(_, f)| f).expect("looked at"),
                            _ => return Err(IntrospectError::Ring(format!("the migration of frame {old_pfn:#x} waited in the ring unarmed (no light doorbell at its begin)"))),
                        },
                    };
                    self.in_flight = Some(f);
                }
            }
            alloc_activity |= self.handle_decoded(pass, from)?;
            if let Some(GuestEvent::CmaPhase { phase: cmaemu_abi::trace::CMA_PHASE_MIGRATE, pfn, count }) = decoded {
                self.migrate_phase(pass.ram(r.kind)?, pfn, count, r.ts_ns)?;
            }
            if let Some(f) = found {
                self.emit_causes(f, r.ts_ns);
            }
        }
        self.apply_tlbi_before(pass, upto);
        // (light doorbells checked the LRU batch when they rang)
        if let (true, Pass::Now { ram, light, .. }) = (self.checks, &mut *pass) {
            // lru_cache_disable() leaves the LRU add batch empty.
            if let Some(rec) = self.snap.read_lru_add(ram) {
                let v = light.lru.check(&rec, &self.ctx(now_ns));
                let v = self.with_recent(v);
                self.report(v);
            }
        }
        if alloc_activity {
            // counters at every allocation's start and end (the state as of
            // this drain), not only at frame boundaries
            let c = self.snapshot(pass.ram(cmaemu_abi::trace::TR_CMA_ALLOC_START)?)?.counters();
            self.emit(Event { ts_ns: now_ns, frame: self.frame, kind: EventKind::Counters(Box::new(c)) });
        }
        Ok(())
    }

    /// The events one record completed, decoded to the end of `out` from
    /// `from` on: each move is checked right after it (its violations
    /// follow it, before the record's next event). Whether one is an
    /// allocation's start or end, or a release.
    fn handle_decoded(&mut self, pass: &mut Pass, from: usize) -> Result<bool, IntrospectError> {
        let activity = self.out[from..].iter().any(|e| matches!(e.kind, EventKind::CmaAllocStart { .. } | EventKind::CmaAllocFinish { .. } | EventKind::CmaRelease { .. }));
        match self.out.len() - from {
            0 => {}
            // almost every record: the event stays where it was decoded
            1 => {
                if matches!(self.out[from].kind, EventKind::MigratePage { .. }) {
                    self.migration_of_last(pass)?;
                }
            }
            // a move flushed before the record's own event: the move's
            // violations go between the two
            _ => {
                let mut evs = std::mem::take(&mut self.evs);
                evs.extend(self.out.drain(from..));
                let r = self.emit_checked(pass, &mut evs);
                evs.clear();
                self.evs = evs;
                r?;
            }
        }
        Ok(activity)
    }

    /// Emit `evs` in order, each move followed by its check (the rest
    /// dropped at an error).
    fn emit_checked(&mut self, pass: &mut Pass, evs: &mut Vec<Event>) -> Result<(), IntrospectError> {
        for e in evs.drain(..) {
            let moved = matches!(e.kind, EventKind::MigratePage { .. });
            self.emit(e);
            if moved {
                self.migration_of_last(pass)?;
            }
        }
        Ok(())
    }

    /// `alloc_contig_range` starts migrating `[pfn, pfn + count)`: it is
    /// isolated and the per-CPU lists were drained, so none of their blocks
    /// may lie there (the guest rings the doorbell at this record: the page
    /// records are read as of now). What is found goes to the pcp-drain
    /// check and to the cause finder (a migration target handed out from
    /// such a block makes the range busy).
    fn migrate_phase(&mut self, ram: &GuestRam, pfn: u32, count: u32, ts_ns: u64) -> Result<(), IntrospectError> {
        if !self.checks && !self.explain {
            return Ok(());
        }
        let blocks = self.snap.read_pcp_blocks(ram, pfn, pfn.saturating_add(count))?;
        if self.checks && !blocks.is_empty() {
            let v = self.with_recent(crate::verify::check_pcp_drained(&blocks, &self.ctx(ts_ns)));
            self.report(v);
        }
        if self.explain {
            self.explainer.pcp_at_migrate(blocks);
        }
        Ok(())
    }

    /// Follow `ge` through the cause finder (a fresh snapshot when it
    /// needs the state of this moment).
    fn explain(&mut self, pass: &Pass, kind: u16, ge: &GuestEvent) -> Result<Option<crate::explain::Found>, IntrospectError> {
        if !self.explainer.needs_state(ge, &self.snap) {
            // (a batch's records need nothing of the guest here)
            let ram = match pass {
                Pass::Now { ram, .. } => *ram,
                Pass::Settle(_) => &self.no_ram,
            };
            return Ok(self.explainer.on_event(ge, &self.snap, crate::explain::Extra { ram, lru: None, dma: &[], pins: None, maps: None, pcp_seen: &[] }));
        }
        let ram = pass.ram(kind)?;
        self.snapshot(ram)?;
        let lru = self.snap.read_lru_add(ram);
        let dma: Vec<crate::explain::DmaSpan> = (0..=cmaemu_abi::desc::DMA_DEV_CMA_TEST)
            .flat_map(|d| self.buffers.buffers(d).iter().map(move |&(pfn, count)| crate::explain::DmaSpan { device: d, pfn, count }))
            .collect();
        Ok(self.explainer.on_event(ge, &self.snap, crate::explain::Extra { ram, lru: lru.as_ref(), dma: &dma, pins: None, maps: None, pcp_seen: &[] }))
    }

    /// One `cma_cause` event per cause (one saying none was found when a
    /// failure has none).
    fn emit_causes(&mut self, f: crate::explain::Found, ts_ns: u64) {
        let name = self.snap.area_name(f.area as u8);
        let ev = |cause: &str, pfn: Option<u32>, text: String| EventKind::CmaCause(Box::new(crate::trace::CmaCause {
            name: name.clone(),
            count: f.count as u64,
            align: f.align,
            retries: f.retries,
            last: f.last,
            errorno: f.errno,
            migrated: f.migrated,
            cause: cause.to_string(),
            pfn,
            text,
        }));
        let kinds: Vec<EventKind> = if f.causes.is_empty() {
            vec![ev("unknown", None, "no cause found in guest memory".into())]
        } else {
            f.causes.iter().map(|c| ev(c.kind(), c.pfn(), c.to_string())).collect()
        };
        for kind in kinds {
            self.emit(Event { ts_ns, frame: self.frame, kind });
        }
    }

    /// The `cmaemu:` console lines of allocations that have returned.
    pub fn take_console_lines(&mut self) -> Vec<String> {
        self.explainer.take_lines()
    }

    /// Check the move just emitted (the last event of `out`): its
    /// violations follow it.
    fn migration_of_last(&mut self, pass: &mut Pass) -> Result<(), IntrospectError> {
        // the move's fields are copied out (its VAs are held in place: no
        // allocation), the event stays where it is
        let Some(Event { ts_ns, kind: EventKind::MigratePage { old_pfn, new_pfn, asid, vas }, .. }) = self.out.last() else { return Ok(()) };
        let (ts_ns, old_pfn, new_pfn, asid) = (*ts_ns, *old_pfn, *new_pfn, *asid);
        // the VAs copied to the stack (on the heap only past a record's)
        let vas = Vas::from_slice(vas);
        self.migration(pass, ts_ns, old_pfn, new_pfn, asid, &vas)
    }

    fn migration(&mut self, pass: &mut Pass, ts_ns: u64, old_pfn: u32, new_pfn: u32, asid: u32, vas: &[u32]) -> Result<(), IntrospectError> {
        if !self.checks {
            return Ok(());
        }
        // What the CPU may still have cached: the old translation, where
        // no invalidate followed the PTE's clearing (on the stack for the
        // VAs of one record, almost every page).
        let stale = |va: u32| self.in_flight.as_ref().and_then(|f| f.stale(old_pfn, asid, va));
        let c: smallvec::SmallVec<[Option<u64>; VAS_INLINE]> = vas.iter().map(|&va| stale(va)).collect();
        let ctx = self.ctx(ts_ns);
        // The address-space table does not change during a migration: the
        // last snapshot serves (re-reading the page array per page would
        // make a migration storm quadratic).
        if self.snap.mmu_regs(asid).is_none() {
            // an address space created since the last snapshot
            self.snapshot(pass.ram(cmaemu_abi::trace::TR_MIGRATE_PAGE)?)?;
        }
        // The new frame is compared in place with the old frame's content
        // at the move (the old frame itself when nothing wrote into it
        // since, else its copy); both are read out only when they differ
        // (the violation says where). Without a capture (no doorbell after
        // migrate_page_begin) the content check cannot run: nothing is
        // compared.
        let v = match pass {
            // compared and read when its light doorbell rang
            Pass::Settle(b) => {
                let Some(seen) = b.seen(old_pfn, new_pfn) else {
                    return Err(IntrospectError::Ring(format!("the move of frame {old_pfn:#x} to {new_pfn:#x} waited in the ring unseen (no light doorbell read it)")));
                };
                let (before, after) = seen.content.contents();
                let m = MigrationInput { old_pfn, new_pfn, asid, vas, before, after, cached: &c };
                check_migration_read(&self.snap, &self.no_ram, &m, &seen.reads, &ctx)
            }
            Pass::Now { ram, light, .. } => {
                let content = Settled::compare(ram, light.capture, old_pfn, new_pfn);
                let (before, after) = content.contents();
                let m = MigrationInput { old_pfn, new_pfn, asid, vas, before, after, cached: &c };
                check_migration(&self.snap, ram, &m, &ctx)
            }
        };
        let v = self.with_recent(v);
        self.report(v);
        Ok(())
    }

    /// One DMA master transfer.
    pub fn dma(&mut self, ram: &GuestRam, t: DmaTransfer, now_ns: u64, dur_ns: u64) -> Result<(), IntrospectError> {
        let ctx = self.ctx(now_ns);
        let v = if self.checks {
            let bufs = self.buffers.clone();
            let mut v = check_dma(self.snapshot(ram)?, Some(&bufs), &t, &ctx);
            v.extend(self.dma_into_moved(&t, &ctx));
            self.with_recent(v)
        } else {
            Vec::new()
        };
        self.emit(Event { ts_ns: now_ns, frame: self.frame, kind: EventKind::DmaTransfer { device: t.device, pa: t.pa, len: t.len, write: t.write, dur_ns } });
        self.report(v);
        Ok(())
    }

    /// Frame `index` starts (after the drain): re-read, emit the frame and
    /// counters, check integrity (stable snapshots) and that no PTE maps a
    /// free frame. This half reads RAM, at the frame's instant: the
    /// snapshot, the frame checks' tables and the LRU batch; None when
    /// nothing more is done at frames, else [`Core::frame_check`] does the
    /// rest.
    fn frame_read(&mut self, ram: &GuestRam, index: u64, now_ns: u64) -> Result<Option<FrameRead>, IntrospectError> {
        self.frame = index;
        if self.transport_only {
            return Ok(None);
        }
        self.dirty = true;
        self.snapshot(ram)?;
        let snap = &*self.snap;
        let lru = if self.checks {
            self.frames.get_or_insert_with(|| FrameChecker::new(ram)).read_tables(snap);
            snap.read_lru_add(ram)
        } else {
            // the checker missed these changes
            self.frames = None;
            None
        };
        Ok(Some(FrameRead { index, now_ns, lru }))
    }

    /// The rest of a frame's pass ([`Core::frame_read`]): it reads nothing
    /// of the guest (on the checks' thread when the session has one).
    fn frame_check(&mut self, read: FrameRead) {
        let FrameRead { index, now_ns, lru } = read;
        let ctx = self.ctx(now_ns);
        let snap = &*self.snap;
        let counters = snap.counters();
        let pb = snap.pageblock_pages();
        let mts: Vec<u8> = snap.pageblocks().map(|p| snap.pageblock_mt(p).unwrap_or(0xf)).collect();
        let first_pfn = snap.pageblocks().next().unwrap_or(0);
        // the last frame's codes brought up to date where the page array
        // was re-read or a CMA bitmap bit changed since (the pages whose
        // code changed lie there), the changes as runs: computed here when
        // no prompt came since the last frame, else compared with the codes
        // now (kept up to date at prompts: only what changed since the last
        // one is computed here); all compared when the array or the areas
        // moved
        let base = snap.base_pfn();
        let mut ranges = std::mem::take(&mut self.changed);
        // what the frame checks have not judged yet (the CMA bitmap bits
        // added below do not matter to them)
        let unjudged = crate::introspect::snapshot::merge_ranges(ranges[std::mem::take(&mut self.frames_judged)..].to_vec());
        let codes_from = std::mem::take(&mut self.codes_done);
        let synced = std::mem::take(&mut self.codes_synced);
        let reusable = self.last_states.as_ref().is_some_and(|o| o.len() == snap.pages.len() && self.last_base == Some(base))
            && cma_bit_ranges(&self.codes_cma, &snap.cma, base, &mut ranges);
        let (states, runs, full) = match self.last_states.take() {
            Some(mut states) if reusable && synced && self.codes_now.codes.len() == states.len() => {
                // each page once: the ranges overlap (windows, free blocks)
                let merged = crate::introspect::snapshot::merge_ranges(ranges);
                let runs = snap.update_state_codes_runs(&merged, &mut states);
                self.codes_now.apply(snap, &runs);
                (states, runs, false)
            }
            Some(mut states) if reusable => {
                let moved = self.codes_now.update(snap, &ranges[codes_from..]);
                let runs = if self.owed.advance(base, moved.as_deref(), &self.codes_now.codes, &states) {
                    // worked out at the prompts: only what changed since
                    // the last one is compared here
                    let runs = std::mem::take(&mut self.owed.runs);
                    crate::trace::apply_runs(base, &runs, &mut states);
                    runs
                } else {
                    let merged = crate::introspect::snapshot::merge_ranges(ranges);
                    crate::trace::state_runs_in(base, &merged, &self.codes_now.codes, &mut states)
                };
                (states, runs, false)
            }
            last => {
                self.codes_now.update(snap, &ranges[codes_from..]);
                let now = &self.codes_now.codes;
                let old = last.filter(|o| o.len() == now.len());
                let runs = crate::trace::state_runs(base, now, old.as_deref());
                let full = old.is_none();
                // the old buffer reused (a large board's 256 Ki codes are
                // not allocated and faulted in anew)
                let mut states = old.unwrap_or_default();
                states.clear();
                states.extend_from_slice(now);
                (states, runs, full)
            }
        };
        if self.codes_cma != snap.cma {
            self.codes_cma = snap.cma.clone();
        }
        self.last_base = Some(base);
        // (the checker is there exactly when the checks run: `frame_read`)
        let v = match self.frames.as_mut() {
            Some(frames) => {
                let mut v = check_integrity(snap, &ctx);
                frames.judge(snap, &unjudged);
                v.extend(frames.findings(snap, &ctx));
                if let Some(rec) = lru {
                    v.extend(check_lru_batch_pages(&rec, snap, &ctx));
                }
                self.with_recent(v)
            }
            None => Vec::new(),
        };
        self.emit(Event { ts_ns: now_ns, frame: index, kind: EventKind::Frame { index } });
        self.emit(Event { ts_ns: now_ns, frame: index, kind: EventKind::Counters(Box::new(counters)) });
        if self.last_mts.as_ref() != Some(&mts) {
            self.last_mts = Some(mts.clone());
            self.emit(Event { ts_ns: now_ns, frame: index, kind: EventKind::PageblockMap { first_pfn, pageblock_pages: pb, mts } });
        }
        if full || !runs.is_empty() {
            self.emit(Event { ts_ns: now_ns, frame: index, kind: EventKind::PageStates { full, runs } });
        }
        self.last_states = Some(states);
        self.codes_synced = true;
        self.owed = Owed { runs: Vec::new(), valid: true };
        self.report_state(v);
    }

    /// The run is over: drain the ring and run every state check on the
    /// final snapshot (a bug in the last moments before the exit is caught
    /// too). A snapshot taken in the middle of an mm operation (the run
    /// stopped there) is not stable: then only the checks that hold at
    /// any instant run.
    fn final_check(&mut self, ram: &GuestRam, now_ns: u64) -> Result<(), IntrospectError> {
        if !self.checks {
            return Ok(());
        }
        self.dirty = true;
        let ctx = self.ctx(now_ns);
        self.snapshot(ram)?;
        let snap = &*self.snap;
        let mut v = check_integrity(snap, &ctx);
        // the changes since the last frame stay for the next one's codes;
        // the frame checks judge those not judged yet
        let merged = crate::introspect::snapshot::merge_ranges(self.changed[self.frames_judged..].to_vec());
        self.frames_judged = self.changed.len();
        v.extend(self.frames.get_or_insert_with(|| FrameChecker::new(ram)).check(snap, &ctx, &merged));
        let v = self.with_recent(v);
        self.report_state(v);
        Ok(())
    }

    /// Report state violations (found by the whole-state checks at frame
    /// boundaries and at exit) once each: a leaked pageblock stays leaked
    /// for the rest of the run and is not re-reported every frame.
    fn report_state(&mut self, vs: Vec<Violation>) {
        let fresh: Vec<Violation> = vs.into_iter().filter(|v| self.seen_state.insert((v.check, v.pfn, v.va, v.detail.clone()))).collect();
        self.report(fresh);
    }

    /// A device write into a frame whose page migration moved away: the
    /// write lands in the old frame and is lost (the page's data now lives
    /// in the new frame).
    fn dma_into_moved(&self, t: &DmaTransfer, ctx: &CheckCtx) -> Vec<Violation> {
        if !t.write || t.len == 0 || self.moved.is_empty() {
            return Vec::new();
        }
        let first = (t.pa >> 12) as u32;
        let last = ((t.pa + t.len - 1) >> 12) as u32;
        let mut out = Vec::new();
        for pfn in first..=last {
            if let Some((new, at)) = self.moved.get(pfn) {
                out.push(ctx.violation(
                    Check::DmaMigrating,
                    Some(pfn),
                    None,
                    Some(t.device),
                    format!(
                        "{} wrote [{:#x}, {:#x}) into frame {pfn:#x}, whose page migrated to frame {new:#x} at {at} ns: the write is lost (the device was not told, the page was not pinned)",
                        cmaemu_abi::desc::dma_dev_name(t.device),
                        t.pa,
                        t.pa + t.len
                    ),
                ));
            }
        }
        out
    }

    /// The CPU is about to cache a user translation `va -> pa` of `asid`.
    pub fn translation(&mut self, ram: &GuestRam, asid: u32, va: u32, pa: u64, now_ns: u64) -> Result<(), IntrospectError> {
        if !self.checks {
            return Ok(());
        }
        let ctx = self.ctx(now_ns);
        if let Some(v) = check_translation(self.snapshot(ram)?, asid, va, pa, &ctx) {
            let v = self.with_recent(vec![v]);
            self.report(v);
        }
        Ok(())
    }

    /// Flush a migrated page still waiting for continuation records.
    pub fn finish(&mut self) {
        let mut evs = Vec::new();
        self.decoder.flush(&mut evs);
        for e in evs {
            self.emit(e);
        }
    }
}

/// The page-state changes a frame event owes: the runs from the codes last
/// emitted (`last_states`) to the codes now, brought up to date at every
/// prompt over the pages the command changed, so that the next frame
/// compares only what changed since the last prompt (a command's changes
/// are not compared again inside the next, timed, one). The runs are the
/// ones a compare of the two arrays gives.
#[derive(Default)]
struct Owed {
    runs: Vec<(u32, u32, u8)>,
    /// The runs hold every change since the last frame (false before the
    /// first and once the codes were computed afresh).
    valid: bool,
}

impl Owed {
    /// `new` changed only in `moved` since the last advance (None:
    /// anywhere); `last` is the codes last emitted. Whether the runs
    /// from `last` to `new` are known (else they are forgotten).
    fn advance(&mut self, base: u32, moved: Option<&[std::ops::Range<usize>]>, new: &[u8], last: &[u8]) -> bool {
        let Some(moved) = moved.filter(|_| self.valid && new.len() == last.len()) else {
            *self = Owed::default();
            return false;
        };
        let fresh = crate::trace::state_runs_between(base, moved, new, last);
        let kept = crate::trace::runs_outside(base, &self.runs, moved);
        self.runs = crate::trace::merge_runs(&kept, &fresh);
        true
    }
}

/// The page-state code of every page of the array as of some snapshot
/// ([`Snapshot::page_state_codes_into`]), kept up to date in place.
#[derive(Default)]
struct Codes {
    /// Empty until the first update.
    codes: Vec<u8>,
    /// The page array's first pfn and the CMA areas they were computed
    /// with.
    base: Option<u32>,
    cma: Vec<crate::introspect::snapshot::CmaArea>,
}

impl Codes {
    /// Bring the codes up to `s`. `changed`: the page-array index ranges
    /// outside which no page record and no free mark changed since the
    /// last update (the pages whose CMA bitmap bit changed are found here;
    /// everything is computed afresh when the array or the areas moved).
    /// Returns the ranges outside which no code changed (None: all were
    /// computed afresh).
    fn update(&mut self, s: &Snapshot, changed: &[std::ops::Range<usize>]) -> Option<Vec<std::ops::Range<usize>>> {
        let base = s.base_pfn();
        let mut ranges = changed.to_vec();
        let moved = if self.codes.len() == s.pages.len() && self.base == Some(base) && cma_bit_ranges(&self.cma, &s.cma, base, &mut ranges) {
            let merged = crate::introspect::snapshot::merge_ranges(ranges);
            s.update_state_codes(&merged, &mut self.codes);
            Some(merged)
        } else {
            s.page_state_codes_into(&mut self.codes);
            None
        };
        self.base = Some(base);
        if self.cma != s.cma {
            self.cma = s.cma.clone();
        }
        moved
    }

    /// Bring the codes up to `s` where they changed: `runs` (first pfn,
    /// pages, code), every change since they were last brought up to date.
    fn apply(&mut self, s: &Snapshot, runs: &[(u32, u32, u8)]) {
        let base = s.base_pfn();
        crate::trace::apply_runs(base, runs, &mut self.codes);
        self.base = Some(base);
        if self.cma != s.cma {
            self.cma = s.cma.clone();
        }
    }
}

/// Add to `ranges` the page-array index ranges whose CMA bitmap bits differ
/// between `old` and `new` (the same areas, bitmaps of the same length);
/// false when the areas themselves differ (every code must be computed).
/// Neighbouring bits make one range (an allocation of 64 MiB changes
/// 16 Ki bits in a row: one range to sort and merge, not 16 Ki).
fn cma_bit_ranges(old: &[crate::introspect::snapshot::CmaArea], new: &[crate::introspect::snapshot::CmaArea], base_pfn: u32, ranges: &mut Vec<std::ops::Range<usize>>) -> bool {
    if old.len() != new.len() {
        return false;
    }
    // the caller's ranges are left as they are
    let mine = ranges.len();
    for (o, n) in old.iter().zip(new) {
        if (o.base_pfn, o.count, o.order_per_bit, o.bitmap.len()) != (n.base_pfn, n.count, n.order_per_bit, n.bitmap.len()) || n.base_pfn < base_pfn {
            return false;
        }
        let chunk = 1usize << n.order_per_bit;
        let first = (n.base_pfn - base_pfn) as usize;
        for (w, (a, b)) in o.bitmap.iter().zip(&n.bitmap).enumerate() {
            let mut d = a ^ b;
            while d != 0 {
                let bit = w * 32 + d.trailing_zeros() as usize;
                d &= d - 1;
                let lo = first + bit * chunk;
                let pushed = ranges.len() > mine;
                match ranges.last_mut() {
                    Some(r) if pushed && r.end == lo => r.end = lo + chunk,
                    _ => ranges.push(lo..lo + chunk),
                }
            }
        }
    }
    true
}

/// Frames whose page migrated away: old pfn -> (new pfn, when). A table
/// indexed by pfn over the page array's frames (two words a frame, zeroed
/// on demand by the host: only the pages of frames that moved are ever
/// touched), a map for any other pfn a record names. A migration storm
/// costs two stores a page, not a hashed insert and remove.
#[derive(Clone, Debug, Default)]
struct MovedFrames {
    base: u32,
    /// Per frame from `base`: `1 << 32 | new pfn`, 0 when it did not move.
    new: Vec<u64>,
    /// Per frame from `base`: when it moved.
    at: Vec<u64>,
    /// Frames of `new` that moved.
    in_table: usize,
    /// Moved frames outside the table.
    others: std::collections::HashMap<u32, (u32, u64)>,
}

impl MovedFrames {
    const MOVED: u64 = 1 << 32;

    /// The table covers `[base, base + frames)`.
    fn new(base: u32, frames: u32) -> Self {
        let n = frames as usize;
        MovedFrames { base, new: vec![0; n], at: vec![0; n], in_table: 0, others: Default::default() }
    }

    fn slot(&self, pfn: u32) -> Option<usize> {
        let i = pfn.checked_sub(self.base)? as usize;
        (i < self.new.len()).then_some(i)
    }

    fn is_empty(&self) -> bool {
        self.in_table == 0 && self.others.is_empty()
    }

    fn insert(&mut self, old: u32, new: u32, at: u64) {
        match self.slot(old) {
            Some(i) => {
                if self.new[i] == 0 {
                    self.in_table += 1;
                }
                self.new[i] = Self::MOVED | new as u64;
                self.at[i] = at;
            }
            None => {
                self.others.insert(old, (new, at));
            }
        }
    }

    fn get(&self, pfn: u32) -> Option<(u32, u64)> {
        match self.slot(pfn) {
            Some(i) => (self.new[i] != 0).then(|| (self.new[i] as u32, self.at[i])),
            None => self.others.get(&pfn).copied(),
        }
    }

    fn remove(&mut self, pfn: u32) {
        match self.slot(pfn) {
            Some(i) => {
                if self.new[i] != 0 {
                    self.new[i] = 0;
                    self.in_table -= 1;
                }
            }
            None => {
                self.others.remove(&pfn);
            }
        }
    }

    /// Forget the frames of `span`.
    fn forget(&mut self, span: std::ops::Range<u32>) {
        if self.is_empty() || span.is_empty() {
            return;
        }
        if self.in_table > 0 {
            let end = self.base as u64 + self.new.len() as u64;
            let (lo, hi) = (span.start.max(self.base) as u64, (span.end as u64).min(end));
            if lo < hi {
                let (lo, hi) = ((lo - self.base as u64) as usize, (hi - self.base as u64) as usize);
                for w in &mut self.new[lo..hi] {
                    if *w != 0 {
                        *w = 0;
                        self.in_table -= 1;
                    }
                }
            }
        }
        if !self.others.is_empty() {
            if span.len() > self.others.len() {
                self.others.retain(|k, _| !span.contains(k));
            } else {
                for k in span {
                    self.others.remove(&k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cma_bit_ranges, MovedFrames, Session, RECENT_EVENTS};
    use crate::findings::{Check, CheckCtx};
    use crate::introspect::synth::SynthGuest;
    use crate::trace::{Event, EventKind, RecentEvents};
    use std::collections::HashMap;

    /// A violation's context is the session's last events (not the board's
    /// events in the stream), whether the session holds the run's stream
    /// all along, holds it and hands it back now and then, never holds it
    /// (its events taken), or holds it and drops it now and then; and the
    /// stream ends up with every event in order (since the last drop).
    #[test]
    fn a_violations_context_is_the_sessions_last_events_however_the_stream_is_held() {
        let mut g = SynthGuest::new(64);
        g.commit();
        let ev = |i: u64| Event { ts_ns: i, frame: 0, kind: EventKind::Mark { label: format!("m{i}") } };
        let found = || vec![CheckCtx { frame: 0, at_ns: 0, recent: Vec::new() }.violation(Check::MigratePte, None, None, None, "x".into())];
        for mode in 0..4 {
            let mut s = Session::attach(&g.ram, g.desc_pa).unwrap();
            let mut every = RecentEvents::new(RECENT_EVENTS);
            // the board's event, before any of the session's
            let mut stream = vec![ev(999)];
            let mut want = stream.clone();
            for i in 0..40u64 {
                match (mode, i % 7) {
                    (0, 0) => s.lend(&mut stream),
                    (1, 2) => {
                        s.hand_back(&mut stream);
                    }
                    (1, 5) => s.lend(&mut stream),
                    (2, 4) => stream.extend(s.take_events()),
                    (3, 0) => s.lend(&mut stream),
                    (3, 3) => {
                        s.drop_stream();
                        want.clear();
                    }
                    _ => {}
                }
                s.note(ev(i));
                every.push(&ev(i));
                want.push(ev(i));
                let v = s.core().with_recent(found());
                assert_eq!(v[0].recent_events, every.to_vec(), "mode {mode} event {i}");
            }
            if mode == 2 {
                stream.extend(s.take_events());
            } else {
                s.hand_back(&mut stream);
            }
            assert_eq!(stream, want, "mode {mode}");
        }
    }

    /// The changed bits' ranges cover the same pages as one range per bit
    /// (merged, the same ranges), a run of bits in one range; the caller's
    /// ranges stay as they were (a touching one is not extended).
    #[test]
    fn cma_bit_ranges_cover_each_changed_bit_with_runs_in_one_range() {
        use crate::introspect::snapshot::{merge_ranges, CmaArea};
        let area = |base_pfn: u32, order_per_bit: u32, bitmap: Vec<u32>| CmaArea {
            index: 0,
            name: "a".into(),
            base_pfn,
            count: bitmap.len() as u32 * 32 << order_per_bit,
            order_per_bit,
            active: true,
            bitmap,
            record: cmaemu_abi::desc::zeroed(),
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200 {
            let words = 1 + (rnd() % 20) as usize;
            let (old, new): (Vec<u32>, Vec<u32>) = (0..words).map(|_| (rnd() as u32, if rnd() % 3 == 0 { u32::MAX } else { rnd() as u32 })).unzip();
            let order = (round % 3) as u32;
            let olds = vec![area(0x100, order, old.clone()), area(0x100 + (words as u32 * 32 << order), 0, old.clone())];
            let news = vec![area(0x100, order, new.clone()), area(0x100 + (words as u32 * 32 << order), 0, new.clone())];
            let mut got = vec![0..0x10];
            assert!(cma_bit_ranges(&olds, &news, 0xf0, &mut got));
            assert_eq!(got[0], 0..0x10, "round {round}");
            // one range per changed bit, as the reference
            let mut want = vec![0..0x10];
            for (o, n) in olds.iter().zip(&news) {
                for bit in 0..words * 32 {
                    if (o.bitmap[bit / 32] ^ n.bitmap[bit / 32]) >> (bit % 32) & 1 != 0 {
                        let lo = (n.base_pfn - 0xf0) as usize + (bit << n.order_per_bit);
                        want.push(lo..lo + (1 << n.order_per_bit));
                    }
                }
            }
            assert!(got.len() <= want.len());
            assert_eq!(merge_ranges(got.clone()), merge_ranges(want), "round {round}");
            // no two of its own ranges touch
            assert!(got[1..].windows(2).all(|w| w[0].end < w[1].start), "round {round}: {got:?}");
        }
        // a run of 64 Ki pages: one range
        let (o, n) = (area(0x100, 0, vec![0; 2048]), area(0x100, 0, vec![u32::MAX; 2048]));
        let mut got = Vec::new();
        assert!(cma_bit_ranges(&[o], &[n], 0x100, &mut got));
        assert_eq!(got, vec![0..65536]);
    }

    /// The table answers as the map it replaces: the same moves, removals
    /// and spans forgotten (inside the table, across its ends, outside it,
    /// empty, to u32::MAX), the same lookups.
    #[test]
    fn moved_frames_answer_as_a_map() {
        let (base, frames) = (0x6_0000u32, 300u32);
        let mut t = MovedFrames::new(base, frames);
        let mut m: HashMap<u32, (u32, u64)> = HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u32| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as u32
        };
        let pick = |r: u32, k: u32| match r % 8 {
            0 => k,                           // anywhere
            1 => u32::MAX - (k % 4),          // at the top
            2 => base.wrapping_sub(k % 8),    // just below
            3 => base + frames + (k % 8),     // just above
            _ => base + k % frames,           // inside
        };
        for step in 0..20_000u64 {
            let (r, k) = (rnd(1 << 30), rnd(u32::MAX));
            match rnd(10) {
                0..=4 => {
                    let (old, new) = (pick(r, k), pick(r >> 3, rnd(u32::MAX)));
                    t.remove(new);
                    m.remove(&new);
                    t.insert(old, new, step);
                    m.insert(old, (new, step));
                }
                5 => {
                    let p = pick(r, k);
                    t.remove(p);
                    m.remove(&p);
                }
                6 => {
                    let lo = pick(r, k);
                    let span = lo..lo.saturating_add(rnd(if r % 3 == 0 { 400 } else { 20 }));
                    t.forget(span.clone());
                    m.retain(|p, _| !span.contains(p));
                }
                _ => {}
            }
            assert_eq!(t.is_empty(), m.is_empty(), "step {step}");
            for _ in 0..4 {
                let p = pick(rnd(1 << 30), rnd(u32::MAX));
                assert_eq!(t.get(p), m.get(&p).copied(), "step {step} pfn {p:#x}");
            }
        }
        for p in base.wrapping_sub(10)..base + frames + 10 {
            assert_eq!(t.get(p), m.get(&p).copied(), "pfn {p:#x}");
        }
    }
}
