//! Host side of the guest's trace ring: drains `[tail, head)` out of guest
//! RAM with the ABI's consumer (`cmaemu_abi::trace::drain`).
use crate::memory::GuestRam;
use crate::introspect::snapshot::IntrospectError;
use cmaemu_abi::desc::GuestDesc;
use cmaemu_abi::trace::{self, ring_bytes, RingError, RingMem, TraceRecord};

/// The ring as [`RingMem`] over guest RAM.
pub struct GuestRing<'a> {
    ram: &'a GuestRam,
    base: u64,
    len: u32,
}

impl<'a> GuestRing<'a> {
    pub fn new(ram: &'a GuestRam, base: u64, capacity: u32) -> Self {
        GuestRing { ram, base, len: ring_bytes(capacity).min(u32::MAX as usize) as u32 }
    }
}

impl RingMem for GuestRing<'_> {
    fn read(&self, off: u32, buf: &mut [u8]) -> bool {
        (off as u64 + buf.len() as u64) <= self.len as u64 && self.ram.read(self.base + off as u64, buf).is_ok()
    }
    fn write(&mut self, off: u32, data: &[u8]) -> bool {
        (off as u64 + data.len() as u64) <= self.len as u64 && self.ram.write(self.base + off as u64, data).is_ok()
    }
}

/// Drains the guest's trace ring; remembers what was lost.
#[derive(Clone, Debug)]
pub struct RingDrainer {
    pa: u64,
    capacity: u32,
    last_overflow: u32,
    /// Records the producer dropped (ring full), so far.
    pub lost_overflow: u64,
    /// Times the header was found corrupt (tail was resynchronised).
    pub corrupt: u64,
    /// Records whose `seq` did not match their slot.
    pub bad_seq: u64,
    /// Records drained so far.
    pub drained: u64,
}

impl RingDrainer {
    /// For the ring the descriptor announces (validated by
    /// `Snapshot::read_desc`). The ring header must agree with it.
    pub fn new(ram: &GuestRam, desc: &GuestDesc) -> Result<Self, IntrospectError> {
        if desc.ring_capacity == 0 {
            return Err(IntrospectError::Ring("the descriptor announces no ring (ring_capacity = 0)".into()));
        }
        let ring = GuestRing::new(ram, desc.ring_pa as u64, desc.ring_capacity);
        let h = trace::header(&ring).map_err(|e| IntrospectError::Ring(format!("{e:?}")))?;
        if h.capacity != desc.ring_capacity {
            return Err(IntrospectError::Ring(format!("header capacity {} differs from the descriptor's {}", h.capacity, desc.ring_capacity)));
        }
        Ok(RingDrainer { pa: desc.ring_pa as u64, capacity: h.capacity, last_overflow: h.overflow, lost_overflow: 0, corrupt: 0, bad_seq: 0, drained: 0 })
    }

    /// Records produced so far (the ring's free-running `head`): the
    /// position the next record the guest pushes will have.
    pub fn head(&self, ram: &GuestRam) -> Option<u32> {
        ram.read_u32(self.pa + trace::RING_OFF_HEAD as u64)
    }

    /// Records consumed so far (`tail`): the position of the first record
    /// the next [`RingDrainer::drain`] returns.
    pub fn tail(&self, ram: &GuestRam) -> Option<u32> {
        ram.read_u32(self.pa + trace::RING_OFF_TAIL as u64)
    }

    /// The ring's capacity in records.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Read the records at ring positions `[from, to)` into `out` without
    /// consuming them (the next [`RingDrainer::drain`] still returns
    /// them). False when one cannot be read or the span is longer than
    /// the ring.
    pub fn peek(&self, ram: &GuestRam, from: u32, to: u32, out: &mut Vec<TraceRecord>) -> bool {
        let n = to.wrapping_sub(from);
        if n > self.capacity {
            return false;
        }
        let ring = GuestRing::new(ram, self.pa, self.capacity);
        let mut b = [0u8; trace::TRACE_RECORD_SIZE];
        for i in 0..n {
            if !ring.read(trace::record_offset(from.wrapping_add(i), self.capacity), &mut b) {
                return false;
            }
            out.push(TraceRecord::from_bytes(&b));
        }
        true
    }

    /// Append every pending record to `out`. Returns how many were new
    /// drops since the last call (the caller may emit a loss event).
    pub fn drain(&mut self, ram: &GuestRam, out: &mut Vec<TraceRecord>) -> Result<u64, IntrospectError> {
        self.drain_max(ram, self.capacity, out)
    }

    /// [`RingDrainer::drain`] of at most `max` records (the oldest).
    pub fn drain_max(&mut self, ram: &GuestRam, max: u32, out: &mut Vec<TraceRecord>) -> Result<u64, IntrospectError> {
        let mut ring = GuestRing::new(ram, self.pa, self.capacity);
        let r = trace::drain(&mut ring, max, |r| out.push(r));
        self.account(r)
    }

    /// Consume the `n` oldest records, which the caller read already (with
    /// [`RingDrainer::peek`]; `bad_seq` of them had the wrong `seq`): as
    /// [`RingDrainer::drain_max`] of `n` with those records, without reading
    /// them again.
    pub fn consume(&mut self, ram: &GuestRam, n: u32, bad_seq: u32) -> Result<u64, IntrospectError> {
        let mut ring = GuestRing::new(ram, self.pa, self.capacity);
        let r = trace::consume(&mut ring, n, bad_seq);
        self.account(r)
    }

    /// Count what a drain saw: the records the guest dropped since the last
    /// one (returned), the records, their wrong `seq`s, a corrupt header.
    fn account(&mut self, r: Result<trace::DrainStats, RingError>) -> Result<u64, IntrospectError> {
        match r {
            Ok(st) => {
                if st.records > 0 || st.overflow != self.last_overflow {
                    let lost = st.overflow.wrapping_sub(self.last_overflow) as u64;
                    self.last_overflow = st.overflow;
                    self.lost_overflow += lost;
                    self.bad_seq += st.bad_seq as u64;
                    self.drained += st.records as u64;
                    return Ok(lost);
                }
                Ok(0)
            }
            Err(RingError::Corrupt { head, tail }) => {
                self.corrupt += 1;
                Err(IntrospectError::Ring(format!("corrupt indices head={head} tail={tail} (capacity {}); skipped to head", self.capacity)))
            }
            Err(e) => Err(IntrospectError::Ring(format!("{e:?}"))),
        }
    }
}
