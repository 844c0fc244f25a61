//! The tasks' address spaces as data (the table the host reads through
//! the descriptor); `vm` works on them.

pub const MAX_TASKS: usize = 4;

#[derive(Clone, Copy)]
pub struct Task {
    pub asid: u16,
    /// Physical address of the task's TTBR0 table (8 KiB aligned).
    pub ttbr0: u32,
    /// Pages mapped at USER_BASE .. USER_BASE + nr_pages * 4 KiB.
    pub nr_pages: u32,
    pub seed: u32,
    /// Pages whose refcount `pin` raised (from the start of the region).
    pub pinned: u32,
    /// Pages `share` mapped from another task: `shared.1` pages from
    /// index `shared.0` (they hold that task's pattern: `check` skips them).
    pub shared: (u32, u32),
}

use cmaemu_abi::desc::PinTable;

pub struct Tasks {
    pub slots: [Option<Task>; MAX_TASKS],
    /// The task whose TTBR0 is loaded.
    pub current: usize,
    /// The pins kept by frame, with their holder: `pin in`'s (what `unpin`
    /// releases) and a capture's (the camera releases them when it ends);
    /// the host reads the table in place (the descriptor's `pin_table_pa`).
    pub pins: PinTable,
}

impl Tasks {
    pub const fn new() -> Self {
        Tasks { slots: [None; MAX_TASKS], current: 0, pins: PinTable::EMPTY }
    }

    /// Task `i`, if it exists.
    pub fn get(&mut self, i: usize) -> Option<&mut Task> {
        self.slots.get_mut(i).and_then(|t| t.as_mut())
    }

    /// The task of address space `asid` (asid = slot + 1).
    pub fn by_asid(&mut self, asid: u16) -> Option<&mut Task> {
        self.get((asid as usize).checked_sub(1)?)
    }
}
