//! Boot and power conventions between the host board and the guest.

/// Machine id the firmware passes in r1 (vexpress, as QEMU's boot stub).
pub const MACHINE_ID_VEXPRESS: u32 = 0x8e0;

/// Physical load address of the kernel image (PHYS_OFFSET + TEXT_OFFSET).
pub const KERNEL_LOAD_PA: u32 = 0x6000_8000;

/// Status word the guest writes to SYS_CFGDATA before SYS_CFG_SHUTDOWN.
/// Low 8 bits: the exit code of `poweroff [code]`.
pub const POWEROFF_CODE_MASK: u32 = 0xff;
/// Set when the kernel powers off because of an oops or a panic.
pub const POWEROFF_PANIC: u32 = 1 << 31;

const _: () = assert!(POWEROFF_PANIC & POWEROFF_CODE_MASK == 0);

/// cmaemu's own registers, at these offsets in the V2M sysregs block (which
/// the real board leaves unused). The guest writes the physical address of
/// its introspection descriptor (`desc::GuestDesc`) here ...
pub const SYS_CMAEMU_DESC: u32 = 0xf0;
/// ... and anything here to have the host drain its trace ring now ...
pub const SYS_CMAEMU_DOORBELL: u32 = 0xf4;
/// ... and 1 here when its shell has printed the prompt and waits for a
/// command line, 0 once it has read one (stepping APIs pause on it; kernel
/// messages printed after the prompt do not hide it).
pub const SYS_CMAEMU_PROMPT: u32 = 0xf8;
/// Value written to [`SYS_CMAEMU_DOORBELL`] by an ordinary doorbell.
pub const DOORBELL_DRAIN: u32 = 1;
/// Value written to [`SYS_CMAEMU_DOORBELL`] when `cma_alloc()` returns,
/// after Linux's own failure lines: the host prints its `cmaemu:` cause
/// lines there.
pub const DOORBELL_CMA_ALLOC_DONE: u32 = 2;
