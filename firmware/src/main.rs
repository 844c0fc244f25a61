//! cmaemu boot firmware: what QEMU's ARM boot stub (`hw/arm/boot.c`) does.
//!
//! At the reset vector: `r0 = 0`, `r1 = machine id` (0x8e0, vexpress),
//! `r2 = physical address of the DTB`, then jump to the kernel entry with
//! the MMU and caches off, in SVC mode with IRQs masked.
//!
//! The host loader fills [`BOOT_INFO`] (found by its ELF symbol) before the
//! first instruction runs: the firmware itself hard-codes no address.
#![no_std]
#![no_main]

use core::arch::global_asm;

/// Filled in by the host loader: magic, machine id, DTB address, entry point.
#[no_mangle]
#[used]
#[link_section = ".text.bootinfo"]
pub static BOOT_INFO: [u32; 4] = [0x434d_4142, 0x8e0, 0, 0];

global_asm!(
    ".section .text.reset, \"ax\"",
    ".arm",
    ".global _start",
    "_start:",
    // SVC mode, IRQ and FIQ masked (the reset state; made explicit).
    "    cpsid if",
    "    adr   r3, 1f",
    "    ldr   r3, [r3]",          // r3 = &BOOT_INFO
    "    ldr   r4, [r3]",          // magic
    "    ldr   r5, =0x434d4142",
    "    cmp   r4, r5",
    "    bne   2f",
    "    mov   r0, #0",
    "    ldr   r1, [r3, #4]",      // machine id
    "    ldr   r2, [r3, #8]",      // DTB physical address
    "    ldr   r4, [r3, #12]",     // kernel entry
    "    bx    r4",
    // A corrupted BOOT_INFO: stop here (the host reports the runaway).
    "2:  wfi",
    "    b     2b",
    "    .balign 4",
    "1:  .word BOOT_INFO",
    "    .ltorg",
);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
