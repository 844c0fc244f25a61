//! The cmaemu guest kernel for vexpress-a9.
#![no_std]
#![no_main]

mod arch;
mod console;
mod drivers;
mod dt;
mod head;
mod hostif;
mod iomem;
mod jobs;
mod kallsyms;
mod video;
mod dmatest;
mod mm;
mod cma;
mod cma_test;
mod debugfs;
mod dma;
mod memcpy;
mod migrate;
mod vm;
mod trace;
mod paging;
mod printk;
mod setup;
mod shell;
mod time;
mod traps;

pub mod sched {
    /// Idle: run a step of each background job, then wait for the next
    /// interrupt (the host skips idle virtual time).
    pub fn idle() {
        crate::jobs::run_steps();
        // Input that arrived while the jobs ran is work: do not sleep on
        // it (Linux's idle loop checks need_resched before WFI). The host
        // pauses a stepping run when the shell sleeps with no input queued.
        if !crate::drivers::uart::rx_pending() {
            crate::arch::wfi();
        }
    }
}

/// Memory only head.rs's assembly uses (by symbol): Rust never reads or
/// writes it, so it needs no owner; the cell makes the static writable.
#[repr(transparent)]
pub struct AsmOnly<T>(core::cell::UnsafeCell<T>);
// SAFETY: no Rust code takes a reference to the contents (the assembly
// writes them before any Rust code runs, on the one CPU).
unsafe impl<T> Sync for AsmOnly<T> {}

#[repr(C, align(16384))]
pub struct Pgd([u32; 4096]);

/// The boot translation table built by head.rs (replaced in paging_init).
#[no_mangle]
#[link_section = ".bss.pgd"]
pub static BOOT_PGD: AsmOnly<Pgd> = AsmOnly(core::cell::UnsafeCell::new(Pgd([0; 4096])));

#[repr(C, align(8))]
pub struct Stack([u8; 64 * 1024]);
/// The boot stack (head.rs loads BOOT_STACK_TOP into sp).
#[no_mangle]
pub static BOOT_STACK: AsmOnly<Stack> = AsmOnly(core::cell::UnsafeCell::new(Stack([0; 64 * 1024])));

core::arch::global_asm!(
    ".section .text",
    ".global BOOT_STACK_TOP",
    ".equ BOOT_STACK_TOP, BOOT_STACK + 65536",
);

/// C entry from head.rs, MMU on, running at the linear-map address.
#[no_mangle]
pub extern "C" fn kmain(dtb_pa: u32, machine: u32) -> ! {
    setup::start_kernel(dtb_pa, machine);
    shell::run()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    pr_info!("Kernel panic - not syncing: {}", info);
    drivers::sysreg::poweroff(cmaemu_abi::boot::POWEROFF_PANIC | 1)
}
