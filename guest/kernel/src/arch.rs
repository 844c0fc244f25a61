//! CP15 access, barriers, TLB maintenance and MMIO for ARMv7-A.
//! All inline assembly of the kernel (besides head.rs) lives here.
use core::arch::asm;

/// Start of the kernel linear map (VA of physical `PHYS_OFFSET`).
pub const PAGE_OFFSET: u32 = 0x8000_0000;
/// Physical base of RAM on vexpress-a9 (legacy map).
pub const PHYS_OFFSET: u32 = 0x6000_0000;
/// Base of the fixed device windows: VA = IO_BASE | (PA & 0x0fff_ffff).
pub const IO_VIRT: u32 = 0xE000_0000;

/// Linear-map VA of a lowmem physical address.
#[inline]
pub fn phys_to_virt(pa: u32) -> u32 {
    pa.wrapping_sub(PHYS_OFFSET).wrapping_add(PAGE_OFFSET)
}
/// Physical address of a linear-map VA.
#[inline]
pub fn virt_to_phys(va: u32) -> u32 {
    va.wrapping_sub(PAGE_OFFSET).wrapping_add(PHYS_OFFSET)
}
/// VA of a device register in one of the two 1 MiB device windows.
#[inline]
pub fn io_p2v(pa: u32) -> u32 {
    IO_VIRT | (pa & 0x0fff_ffff)
}

#[inline]
pub fn readl(va: u32) -> u32 {
    // SAFETY: `va` is a device register inside a device window mapped at
    // boot; a volatile 32-bit load has no other effect.
    unsafe { core::ptr::read_volatile(va as *const u32) }
}
#[inline]
pub fn writel(va: u32, v: u32) {
    // SAFETY: as for `readl`; device registers accept 32-bit stores.
    unsafe { core::ptr::write_volatile(va as *mut u32, v) }
}

macro_rules! cp15_rw {
    ($get:ident, $set:ident, $crn:literal, $op1:literal, $crm:literal, $op2:literal) => {
        #[inline]
        pub fn $get() -> u32 {
            let v: u32;
            // SAFETY: reading a CP15 system register has no side effects.
            unsafe { asm!(concat!("mrc p15, ", $op1, ", {0}, ", $crn, ", ", $crm, ", ", $op2), out(reg) v, options(nomem, nostack)) };
            v
        }
        #[inline]
        pub fn $set(v: u32) {
            // SAFETY: the callers write architecturally valid values; the
            // isb makes the change visible to the following instructions.
            unsafe { asm!(concat!("mcr p15, ", $op1, ", {0}, ", $crn, ", ", $crm, ", ", $op2), "isb", in(reg) v, options(nostack)) };
        }
    };
}
cp15_rw!(sctlr, set_sctlr, "c1", "0", "c0", "0");
cp15_rw!(ttbr0, set_ttbr0, "c2", "0", "c0", "0");
cp15_rw!(ttbr1, set_ttbr1, "c2", "0", "c0", "1");
cp15_rw!(ttbcr, set_ttbcr, "c2", "0", "c0", "2");
cp15_rw!(dacr, set_dacr, "c3", "0", "c0", "0");
cp15_rw!(dfsr, set_dfsr, "c5", "0", "c0", "0");
cp15_rw!(ifsr, set_ifsr, "c5", "0", "c0", "1");
cp15_rw!(dfar, set_dfar, "c6", "0", "c0", "0");
cp15_rw!(ifar, set_ifar, "c6", "0", "c0", "2");
cp15_rw!(vbar, set_vbar, "c12", "0", "c0", "0");
cp15_rw!(midr, set_midr_unused, "c0", "0", "c0", "0");

/// Invalidate the whole unified TLB (TLBIALL).
#[inline]
pub fn tlb_flush_all() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe { asm!("dsb", "mcr p15, 0, {0}, c8, c7, 0", "dsb", "isb", in(reg) 0u32, options(nostack)) };
}
/// Invalidate the TLB entry of one VA (TLBIMVA; ASID 0).
#[inline]
pub fn tlb_flush_va(va: u32) {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe { asm!("dsb", "mcr p15, 0, {0}, c8, c7, 1", "dsb", "isb", in(reg) va & !0xfff, options(nostack)) };
}

#[inline]
pub fn dsb() {
    // SAFETY: a barrier.
    unsafe { asm!("dsb", options(nostack)) };
}

/// Unmask IRQs (CPSR.I = 0).
#[inline]
pub fn irq_enable() {
    // SAFETY: the vector table and the IRQ stack frame are set up before
    // the first call (kmain).
    unsafe { asm!("cpsie i", options(nomem, nostack)) };
}
/// Mask IRQs and return whether they were enabled.
#[inline]
pub fn irq_save() -> bool {
    let cpsr: u32;
    // SAFETY: reading CPSR and masking IRQs.
    unsafe { asm!("mrs {0}, cpsr", "cpsid i", out(reg) cpsr, options(nomem, nostack)) };
    cpsr & 0x80 == 0
}
#[inline]
pub fn irq_restore(was_enabled: bool) {
    if was_enabled {
        irq_enable();
    }
}

/// Wait for an interrupt (the emulator skips idle virtual time here).
#[inline]
pub fn wfi() {
    // SAFETY: wfi only waits.
    unsafe { asm!("dsb", "wfi", options(nomem, nostack)) };
}

/// Run `f` with IRQs masked.
pub fn without_irqs<R>(f: impl FnOnce() -> R) -> R {
    let e = irq_save();
    let r = f();
    irq_restore(e);
    r
}

/// Raise the exceptions the shell's `crash` command demonstrates.
pub mod crash {
    use core::arch::asm;
    /// An undefined instruction (permanently undefined encoding UDF #0x42).
    pub fn undef() {
        // SAFETY: deliberately faults; the undef handler never returns here.
        unsafe { asm!(".inst 0xe7f004f2", options(nostack)) };
    }
    /// A load from an unmapped kernel VA.
    pub fn dabt(va: u32) -> u32 {
        let v: u32;
        // SAFETY: deliberately faults on an unmapped address.
        unsafe { asm!("ldr {0}, [{1}]", out(reg) v, in(reg) va, options(nostack)) };
        v
    }
    /// Point the kernel (SVC-mode) stack at an unmapped VA, then fault:
    /// the vector stub's `srsdb` onto that stack faults in turn, in Abort
    /// mode, again and again (a recursive abort, as with a corrupt stack).
    pub fn bad_stack(va: u32) {
        // SAFETY: deliberately wrecks the stack pointer and faults; the CPU
        // never comes back here.
        unsafe { asm!("cpsid i", "mov sp, {0}", "ldr {0}, [{0}]", inout(reg) va => _, options(nostack)) };
    }
    /// A branch to an unmapped VA.
    pub fn pabt(va: u32) {
        // SAFETY: deliberately faults on instruction fetch.
        unsafe { asm!("blx {0}", in(reg) va, out("lr") _, options(nostack)) };
    }
    /// A supervisor call from kernel mode; returns what the handler put in r0.
    pub fn svc(imm_arg: u32) -> u32 {
        let mut r0 = imm_arg;
        // SAFETY: the SVC handler returns to the next instruction; lr_svc is
        // clobbered by exception entry, so it is declared clobbered.
        unsafe { asm!("svc #0x42", inout("r0") r0, out("lr") _, options(nostack)) };
        r0
    }
}

core::arch::global_asm!(
    ".section .text.spin_loop, \"ax\"",
    ".arm",
    ".global spin_loop",
    ".balign 32",
    // u32 spin_loop(u32 n): a tight ALU loop of 3 instructions a turn; the
    // benchmark runs this same code on bare Unicorn for its baseline.
    "spin_loop:",
    "    mov   r1, #0",
    "1:  add   r1, r1, r0",
    "    subs  r0, r0, #1",
    "    bne   1b",
    "    mov   r0, r1",
    "    bx    lr",
    ".balign 32",
    ".global xorshift_loop",
    // u32 xorshift_loop(u32 n): an xorshift32 generator summed, 6
    // instructions a turn (about the kernel's own average block length:
    // 4.8 at boot); the benchmark's second, typical-block loop.
    "xorshift_loop:",
    "    movw  r2, #0xf491",
    "    movt  r2, #0x2545",
    "    mov   r1, #0",
    "2:  eor   r2, r2, r2, lsl #13",
    "    eor   r2, r2, r2, lsr #17",
    "    eor   r2, r2, r2, lsl #5",
    "    add   r1, r1, r2",
    "    subs  r0, r0, #1",
    "    bne   2b",
    "    mov   r0, r1",
    "    bx    lr",
);
extern "C" {
    /// See the global_asm above.
    fn spin_loop(n: u32) -> u32;
    /// See the global_asm above.
    fn xorshift_loop(n: u32) -> u32;
}

/// `spin N`: N turns of a 3-instruction ALU loop; returns its checksum.
pub fn spin(n: u32) -> u32 {
    // SAFETY: spin_loop only uses r0/r1 and returns.
    unsafe { spin_loop(n) }
}

/// `spin N xorshift`: N steps of an xorshift32 generator, summed.
pub fn xorshift(n: u32) -> u32 {
    // SAFETY: xorshift_loop only uses r0-r2 and returns.
    unsafe { xorshift_loop(n) }
}

// --- RAM that no Rust object owns: frames from memblock or the page
// allocator (page tables, user pages, DMA buffers, the host's tables),
// reached by kernel VA (the linear map, or the current task's user
// mapping). As `readl`/`writel` are for device registers, these are the
// kernel's one door to such memory: the caller names memory it owns
// (frames it allocated, tables it built) that no Rust reference covers.

/// Volatile 32-bit load from RAM at `va`.
#[inline]
pub fn ram_read32(va: u32) -> u32 {
    // SAFETY: `va` is 4-byte aligned RAM mapped at this VA, outside every
    // Rust object (see above): a load has no other effect.
    unsafe { core::ptr::read_volatile(va as *const u32) }
}

/// Volatile 32-bit store to RAM at `va`.
#[inline]
pub fn ram_write32(va: u32, v: u32) {
    // SAFETY: as for `ram_read32`; the caller owns the word.
    unsafe { core::ptr::write_volatile(va as *mut u32, v) }
}

/// Volatile store of a plain record (`guest/abi` layouts) to RAM at `va`.
#[inline]
pub fn ram_write<T: Copy>(va: u32, v: T) {
    // SAFETY: as for `ram_write32`; `va` is aligned for `T` and the caller
    // owns size_of::<T>() bytes there.
    unsafe { core::ptr::write_volatile(va as *mut T, v) }
}

/// Zero `bytes` of RAM from `va`.
pub fn ram_zero(va: u32, bytes: usize) {
    // SAFETY: the caller owns the range (fresh frames or a table it built).
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, bytes) };
}

/// Copy `bytes` of RAM from `from` to `to` (the ranges do not overlap).
pub fn ram_copy(from: u32, to: u32, bytes: usize) {
    // SAFETY: the caller owns `to` and may read `from`; both are mapped
    // RAM outside Rust objects and do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, bytes) };
}

/// The kernel image's section boundaries (linker symbols, link.ld).
pub struct Sections {
    pub stext: u32,
    pub etext: u32,
    pub sdata: u32,
    pub edata: u32,
    pub sbss: u32,
    pub ebss: u32,
    pub end: u32,
    /// The exception vectors (`VECTORS`, for VBAR).
    pub vectors: u32,
}

extern "C" {
    static _stext: u8;
    static _etext: u8;
    static _sdata: u8;
    static _edata: u8;
    static _sbss: u8;
    static _ebss: u8;
    static _end: u8;
    static VECTORS: u8;
}

/// Where the kernel's sections lie.
pub fn sections() -> Sections {
    // (taking the address of an extern static is safe; nothing reads them)
    Sections {
        stext: core::ptr::addr_of!(_stext) as u32,
        etext: core::ptr::addr_of!(_etext) as u32,
        sdata: core::ptr::addr_of!(_sdata) as u32,
        edata: core::ptr::addr_of!(_edata) as u32,
        sbss: core::ptr::addr_of!(_sbss) as u32,
        ebss: core::ptr::addr_of!(_ebss) as u32,
        end: core::ptr::addr_of!(_end) as u32,
        vectors: core::ptr::addr_of!(VECTORS) as u32,
    }
}

/// One owner for a piece of kernel state (Hubris's `with_task_table`):
/// [`Guarded::with`] lends `&mut T` to one caller at a time and panics on
/// re-entry (a nested `with`, or an interrupt handler reaching state its
/// thread holds) instead of creating a second `&mut`. A cell made with
/// [`Guarded::new`] holds nothing until [`Guarded::install`]; `with` then
/// returns `None`. A cell made with [`Guarded::new_with`] from all-zero
/// contents is all zeros itself (it lands in .bss, like a zeroed buffer).
pub struct Guarded<T> {
    busy: core::sync::atomic::AtomicBool,
    absent: core::sync::atomic::AtomicBool,
    cell: core::cell::UnsafeCell<core::mem::MaybeUninit<T>>,
}

// SAFETY: the contents are reached only through `with`/`install`, which
// take `busy` first (one CPU: an atomic swap cannot be interleaved), so
// at most one reference to them exists at any time, from any context.
unsafe impl<T> Sync for Guarded<T> {}

#[cold]
#[inline(never)]
#[track_caller]
fn reentered() -> ! {
    panic!("kernel state re-entered while borrowed")
}

impl<T> Guarded<T> {
    /// Empty until [`Guarded::install`].
    pub const fn new() -> Self {
        Guarded {
            busy: core::sync::atomic::AtomicBool::new(false),
            absent: core::sync::atomic::AtomicBool::new(true),
            cell: core::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()),
        }
    }

    /// Holding `v` from the start.
    pub const fn new_with(v: T) -> Self {
        Guarded {
            busy: core::sync::atomic::AtomicBool::new(false),
            absent: core::sync::atomic::AtomicBool::new(false),
            cell: core::cell::UnsafeCell::new(core::mem::MaybeUninit::new(v)),
        }
    }

    #[track_caller]
    fn claim(&self) {
        if self.busy.swap(true, core::sync::atomic::Ordering::Acquire) {
            reentered();
        }
    }

    fn release(&self) {
        self.busy.store(false, core::sync::atomic::Ordering::Release);
    }

    /// Put the state in place (boot; replaces what was there).
    #[track_caller]
    pub fn install(&self, v: T) {
        self.claim();
        let absent = self.absent.swap(false, core::sync::atomic::Ordering::Relaxed);
        // SAFETY: `claim` succeeded: no other reference to the cell exists
        // until `release`; the old contents are dropped only if present.
        unsafe {
            let c = &mut *self.cell.get();
            if !absent {
                c.assume_init_drop();
            }
            c.write(v);
        }
        self.release();
    }

    /// Run `f` on the state; `None` if it is not installed yet.
    #[track_caller]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.claim();
        let r = if self.absent.load(core::sync::atomic::Ordering::Relaxed) {
            None
        } else {
            // SAFETY: as in `install`: the `&mut` lent to `f` is the only
            // reference to the contents while `f` runs (a nested `with`
            // panics in `claim`) and cannot escape it; `absent` is false,
            // so the contents are initialised.
            Some(f(unsafe { (*self.cell.get()).assume_init_mut() }))
        };
        self.release();
        r
    }
}
