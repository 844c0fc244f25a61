//! Exception handling: IRQ dispatch, SVC, and Linux-style oopses for
//! undefined instructions and aborts taken in kernel mode.
use crate::arch;
use crate::drivers::{gic, map, timer, uart};
use crate::pr_info;

/// The frame the vector stubs push on the SVC stack.
#[repr(C)]
pub struct TrapFrame {
    pub r: [u32; 13],
    pub lr: u32,
    pub pc: u32,
    pub spsr: u32,
}
const _: () = assert!(core::mem::size_of::<TrapFrame>() == 64);

pub const KIND_UNDEF: u32 = 1;
pub const KIND_SVC: u32 = 2;
pub const KIND_PABT: u32 = 3;
pub const KIND_DABT: u32 = 4;
pub const KIND_IRQ: u32 = 6;

/// Called by the vector stubs (head.rs).
#[no_mangle]
pub extern "C" fn trap_entry(f: &mut TrapFrame, kind: u32) {
    match kind {
        KIND_IRQ => handle_irq(),
        KIND_SVC => handle_svc(f),
        KIND_UNDEF => {
            f.pc = f.pc.wrapping_sub(4);
            die("Oops - undefined instruction", 0, f)
        }
        KIND_DABT => do_kernel_fault(f, arch::dfar(), arch::dfsr(), false),
        KIND_PABT => do_kernel_fault(f, arch::ifar(), arch::ifsr(), true),
        _ => die("Oops - bad mode", kind, f),
    }
}

fn handle_irq() {
    loop {
        let iar = gic::ack();
        let id = iar & 0x3ff;
        if id >= 1020 {
            return;
        }
        match id {
            map::IRQ_TIMER01 => {
                timer::irq();
                crate::time::sched_clock(); // keeps the 24 MHz counter extension fresh
            }
            map::IRQ_UART0 => uart::irq(),
            crate::video::IRQ_CAMERA => crate::video::irq_camera(),
            crate::video::IRQ_CLCD => crate::video::irq_clcd(),
            _ => pr_info!("irq {}: nobody cared", id),
        }
        gic::eoi(iar);
    }
}

pub static SVC_COUNT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn handle_svc(f: &mut TrapFrame) {
    // ARM state: the SVC instruction is the word before the return address.
    // The return address follows an SVC instruction in mapped, executable
    // kernel text.
    let insn = arch::ram_read32(f.pc.wrapping_sub(4));
    let imm = insn & 0x00ff_ffff;
    SVC_COUNT.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    pr_info!("svc #{:#x} from kernel mode at pc {:08x}: handled", imm, f.pc.wrapping_sub(4));
    f.r[0] = f.r[0].wrapping_add(imm);
}

/// `__do_kernel_fault` (arch/arm/mm/fault.c): no fixup, so oops.
fn do_kernel_fault(f: &mut TrapFrame, addr: u32, fsr: u32, prefetch: bool) {
    pr_info!("8<--- cut here ---");
    pr_info!(
        "Unable to handle kernel {} at virtual address {:08x}",
        if addr < 4096 { "NULL pointer dereference" } else { "paging request" },
        addr
    );
    show_pte(addr);
    die(if prefetch { "Oops - prefetch" } else { "Oops" }, fsr, f)
}

/// `show_pte`: the L1 (and L2) entry of `addr`.
fn show_pte(addr: u32) {
    let n = arch::ttbcr() & 7;
    let (base, idx) = if n != 0 && addr >> (32 - n) == 0 {
        (arch::ttbr0() & !((1u32 << (14 - n)) - 1), addr >> 20)
    } else {
        (arch::ttbr1() & !0x3fff, addr >> 20)
    };
    let pgd = read_phys(base + idx * 4);
    if pgd & 3 == 1 {
        let pte = read_phys((pgd & !0x3ff) + ((addr >> 12) & 0xff) * 4);
        pr_info!("[{:08x}] *pgd={:08x}, *pte={:08x}", addr, pgd, pte);
    } else {
        pr_info!("[{:08x}] *pgd={:08x}", addr, pgd);
    }
}

fn read_phys(pa: u32) -> u32 {
    if !(arch::PHYS_OFFSET..arch::PHYS_OFFSET + 0x4000_0000).contains(&pa) {
        return 0;
    }
    // lowmem is linearly mapped; a page-table word is readable
    arch::ram_read32(arch::phys_to_virt(pa))
}

static DIE_COUNTER: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// `die()` / `__die()` (arch/arm/kernel/traps.c): print the oops and the
/// registers, then panic ("Fatal exception") and power off non-zero.
pub fn die(msg: &str, err: u32, f: &TrapFrame) -> ! {
    let n = DIE_COUNTER.fetch_add(1, core::sync::atomic::Ordering::Relaxed) + 1;
    let sp = f as *const TrapFrame as u32 + core::mem::size_of::<TrapFrame>() as u32;
    pr_info!("Internal error: {}: {:x} [#{}] ARM", msg, err, n);
    pr_info!("Modules linked in:");
    pr_info!("CPU: 0 PID: 1 Comm: sh Not tainted 6.1.0-cmaemu #1");
    pr_info!("Hardware name: ARM-Versatile Express");
    pr_info!("PC is at {}", crate::kallsyms::Sym(f.pc));
    pr_info!("LR is at {}", crate::kallsyms::Sym(f.lr));
    pr_info!("pc : [<{:08x}>]    lr : [<{:08x}>]    psr: {:08x}", f.pc, f.lr, f.spsr);
    pr_info!("sp : {:08x}  ip : {:08x}  fp : {:08x}", sp, f.r[12], f.r[11]);
    pr_info!("r10: {:08x}  r9 : {:08x}  r8 : {:08x}", f.r[10], f.r[9], f.r[8]);
    pr_info!("r7 : {:08x}  r6 : {:08x}  r5 : {:08x}  r4 : {:08x}", f.r[7], f.r[6], f.r[5], f.r[4]);
    pr_info!("r3 : {:08x}  r2 : {:08x}  r1 : {:08x}  r0 : {:08x}", f.r[3], f.r[2], f.r[1], f.r[0]);
    pr_info!("Kernel panic - not syncing: Fatal exception");
    crate::drivers::sysreg::poweroff(cmaemu_abi::boot::POWEROFF_PANIC | 1)
}
