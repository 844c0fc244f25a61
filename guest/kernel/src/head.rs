//! Boot entry, early page table and exception vectors (ARMv7-A, ARM state).
//!
//! `_start` runs at its physical address with the MMU off, as the firmware
//! leaves it (r0 = 0, r1 = machine id, r2 = DTB physical address). It clears
//! .bss, builds a boot translation table (an identity section for the code
//! that turns the MMU on, the kernel linear map, the two device windows),
//! enables the MMU with TTBCR.N = 1 (TTBR0 for user space below 2 GiB,
//! TTBR1 for the kernel) and jumps to [`crate::kmain`] at its virtual
//! address. `mm::paging` then replaces the boot table with the final one
//! (4 KiB pages for the kernel image so that only text is executable).
use core::arch::global_asm;

global_asm!(
    ".section .head.text, \"ax\"",
    ".arm",
    ".global _start",
    "_start:",
    "    cpsid aif",
    "    mov   r10, r2",                  // DTB physical address
    "    mov   r11, r1",                  // machine id
    // virt-to-phys offset of the kernel image: PA = VA - 0x20000000
    "    ldr   r9, =0x20000000",
    // clear .bss (physical addresses, MMU off)
    "    ldr   r0, =_sbss",
    "    ldr   r1, =_ebss",
    "    sub   r0, r0, r9",
    "    sub   r1, r1, r9",
    "    mov   r3, #0",
    "1:  cmp   r0, r1",
    "    strlo r3, [r0], #4",
    "    blo   1b",
    // boot page table (16 KiB aligned in .bss)
    "    ldr   r4, =BOOT_PGD",
    "    sub   r4, r4, r9",               // r4 = PA of the table
    // identity section for the MiB holding this code (PA 0x600xxxxx)
    "    ldr   r5, =0x0000140e",          // section, kernel RW, normal WB
    "    adr   r6, _start",
    "    lsr   r6, r6, #20",
    "    orr   r7, r5, r6, lsl #20",
    "    str   r7, [r4, r6, lsl #2]",
    // linear map: VA 0x80000000 + n MiB -> PA 0x60000000 + n MiB, n < 1024
    "    ldr   r6, =0x800",
    "    ldr   r7, =0x60000000",
    "    orr   r7, r7, r5",
    "    ldr   r8, =0xc00",
    "2:  str   r7, [r4, r6, lsl #2]",
    "    add   r7, r7, #0x100000",
    "    add   r6, r6, #1",
    "    cmp   r6, r8",
    "    blo   2b",
    // device windows: VA 0xE0000000 | (PA & 0x0fffffff), XN, shared device
    "    ldr   r5, =0x00000416",
    "    ldr   r7, =0x10000000",
    "    orr   r7, r7, r5",
    "    ldr   r6, =0xe00",
    "    str   r7, [r4, r6, lsl #2]",
    "    ldr   r7, =0x1e000000",
    "    orr   r7, r7, r5",
    "    ldr   r6, =0xee0",
    "    str   r7, [r4, r6, lsl #2]",
    // translation registers
    "    mov   r0, #1",
    "    mcr   p15, 0, r0, c2, c0, 2",    // TTBCR.N = 1
    "    mcr   p15, 0, r4, c2, c0, 0",    // TTBR0
    "    mcr   p15, 0, r4, c2, c0, 1",    // TTBR1
    "    ldr   r0, =0x55555555",
    "    mcr   p15, 0, r0, c3, c0, 0",    // DACR: all domains client
    "    mov   r0, #0",
    "    mcr   p15, 0, r0, c8, c7, 0",    // TLBIALL
    "    dsb",
    "    isb",
    "    mrc   p15, 0, r0, c1, c0, 0",
    "    bic   r0, r0, #(1 << 1)",        // A: no alignment faults
    "    bic   r0, r0, #(1 << 13)",       // V: vectors from VBAR
    "    orr   r0, r0, #(1 << 0)",        // M
    "    orr   r0, r0, #(1 << 2)",        // C
    "    orr   r0, r0, #(1 << 12)",       // I
    "    orr   r0, r0, #(1 << 11)",       // Z
    "    mcr   p15, 0, r0, c1, c0, 0",
    "    isb",
    "    ldr   sp, =BOOT_STACK_TOP",
    "    mov   r0, r10",
    "    mov   r1, r11",
    "    ldr   r2, =kmain",
    "    bx    r2",
    "    .ltorg",
    // ---------------------------------------------------------------
    ".section .text.vectors, \"ax\"",
    ".balign 32",
    ".global VECTORS",
    "VECTORS:",
    "    b     vec_reset",
    "    b     vec_undef",
    "    b     vec_svc",
    "    b     vec_pabt",
    "    b     vec_dabt",
    "    b     vec_reset",
    "    b     vec_irq",
    "    b     vec_fiq",
    // Every entry builds the same trap frame on the SVC stack:
    // r0-r12, lr_svc, return pc, spsr (16 words), then calls
    // trap_entry(frame, kind) and returns with rfe.
    "vec_reset:",
    "    mov   r0, #0",
    "    b     vec_common_pre",
    "vec_undef:",
    "    srsdb sp!, #0x13",
    "    cps   #0x13",
    "    push  {{r0-r12, lr}}",
    "    mov   r1, #1",
    "    b     vec_common",
    "vec_svc:",
    "    srsdb sp!, #0x13",
    "    push  {{r0-r12, lr}}",
    "    mov   r1, #2",
    "    b     vec_common",
    "vec_pabt:",
    "    sub   lr, lr, #4",
    "    srsdb sp!, #0x13",
    "    cps   #0x13",
    "    push  {{r0-r12, lr}}",
    "    mov   r1, #3",
    "    b     vec_common",
    "vec_dabt:",
    "    sub   lr, lr, #8",
    "    srsdb sp!, #0x13",
    "    cps   #0x13",
    "    push  {{r0-r12, lr}}",
    "    mov   r1, #4",
    "    b     vec_common",
    "vec_irq:",
    "    sub   lr, lr, #4",
    "    srsdb sp!, #0x13",
    "    cps   #0x13",
    "    push  {{r0-r12, lr}}",
    "    mov   r1, #6",
    "    b     vec_common",
    "vec_fiq:",
    "    sub   lr, lr, #4",
    "    srsdb sp!, #0x13",
    "    cps   #0x13",
    "    push  {{r0-r12, lr}}",
    "    mov   r1, #7",
    "    b     vec_common",
    "vec_common_pre:",
    "    b     .",
    "vec_common:",
    "    mov   r0, sp",
    "    and   r4, sp, #4",               // keep the C stack 8-byte aligned
    "    sub   sp, sp, r4",
    "    push  {{r4, r5}}",
    "    bl    trap_entry",
    "    pop   {{r4, r5}}",
    "    add   sp, sp, r4",
    "    pop   {{r0-r12, lr}}",
    "    rfeia sp!",
);
