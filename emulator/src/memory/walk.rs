//! ARMv7-A short-descriptor translation table walk (B3.5 of the ARM ARM),
//! pure: it reads guest physical words through a closure.
//!
//! Used twice: by the CPU glue as the MMU itself (Unicorn's virtual TLB
//! asks the host for every translation it caches), and by introspection to
//! map any VA of any guest address space to its frame.

/// What an access wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

/// Translation registers and mode, as the walk sees them.
#[derive(Clone, Copy, Debug, Default)]
pub struct MmuRegs {
    pub sctlr: u32,
    pub ttbr0: u32,
    pub ttbr1: u32,
    pub ttbcr: u32,
    pub dacr: u32,
    /// The access is made at PL1 (kernel) rather than PL0 (user).
    pub privileged: bool,
}

/// Permissions of a successful translation for the current privilege.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

/// A successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the byte at `va`.
    pub pa: u64,
    pub perms: Perms,
    /// The level-1 descriptor and, for pages, the level-2 descriptor.
    pub l1: u32,
    pub l2: Option<u32>,
}

/// A fault, with the short-descriptor FSR value the CPU would report
/// (FS[4] in bit 10, FS[3:0] in bits 3:0, domain in bits 7:4; WnR is added
/// by the caller for DFSR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub fsr: u32,
    pub kind: FaultKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    TranslationSection,
    TranslationPage,
    DomainSection,
    DomainPage,
    PermissionSection,
    PermissionPage,
}

impl FaultKind {
    /// FS[4:0] of the short-descriptor format.
    pub fn fs(self) -> u32 {
        match self {
            FaultKind::TranslationSection => 0b00101,
            FaultKind::TranslationPage => 0b00111,
            FaultKind::DomainSection => 0b01001,
            FaultKind::DomainPage => 0b01011,
            FaultKind::PermissionSection => 0b01101,
            FaultKind::PermissionPage => 0b01111,
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::TranslationSection => "section translation fault",
            FaultKind::TranslationPage => "page translation fault",
            FaultKind::DomainSection => "section domain fault",
            FaultKind::DomainPage => "page domain fault",
            FaultKind::PermissionSection => "section permission fault",
            FaultKind::PermissionPage => "page permission fault",
        }
    }
}

fn fault(kind: FaultKind, domain: u32) -> Fault {
    let fs = kind.fs();
    Fault { fsr: (fs & 0xf) | ((fs >> 4) << 10) | ((domain & 0xf) << 4), kind }
}

/// Permissions from AP[2:0] (SCTLR.AFE = 0) for the given privilege.
fn ap_perms(ap: u32, privileged: bool) -> (bool, bool) {
    // (read, write)
    match (ap, privileged) {
        (0b000, _) => (false, false),
        (0b001, true) => (true, true),
        (0b001, false) => (false, false),
        (0b010, true) => (true, true),
        (0b010, false) => (true, false),
        (0b011, _) => (true, true),
        (0b101, true) => (true, false),
        (0b101, false) => (false, false),
        (0b110, _) | (0b111, _) => (true, false),
        _ => (false, false), // 0b100 reserved
    }
}

/// Entries of the TTBR0 first-level table: TTBCR.N = 0 gives it the whole
/// 4 GiB (4096 entries), N > 0 the bottom 2^(32-N) bytes (4096 >> N).
pub fn ttbr0_entries(r: &MmuRegs) -> u32 {
    4096 >> (r.ttbcr & 7)
}

/// The 4 KiB frame (its physical address) that the second-level
/// descriptor `d` maps at `va`: a small page's, or the frame of `va`
/// inside a 64 KiB large page; None for a fault entry.
#[inline]
pub fn l2_frame(d: u32, va: u32) -> Option<u64> {
    match d & 3 {
        0 => None,
        0b01 => Some(((d & 0xffff_0000) | (va & 0xf000)) as u64),
        _ => Some((d & 0xffff_f000) as u64),
    }
}

/// The table base and L1 index for `va` (TTBCR.N selects TTBR0/TTBR1).
pub fn l1_slot(r: &MmuRegs, va: u32) -> u32 {
    let n = r.ttbcr & 7;
    if n == 0 || va >> (32 - n) == 0 {
        let base = r.ttbr0 & !((1u32 << (14 - n)) - 1);
        base + ((va << n) >> (n + 20)) * 4
    } else {
        (r.ttbr1 & !0x3fff) + (va >> 20) * 4
    }
}

/// Translate `va` for `access`. `read32` reads a guest physical word
/// (None when the address is not RAM, which the walk treats as a fault-
/// free zero descriptor, i.e. a translation fault).
pub fn translate(r: &MmuRegs, va: u32, access: Access, read32: &mut dyn FnMut(u64) -> Option<u32>) -> Result<Translation, Fault> {
    if r.sctlr & 1 == 0 {
        let all = Perms { read: true, write: true, exec: true };
        return Ok(Translation { pa: va as u64, perms: all, l1: 0, l2: None });
    }
    let l1 = read32(l1_slot(r, va) as u64).unwrap_or(0);
    let (pa, domain, ap, xn, l2, section) = match l1 & 3 {
        0b01 => {
            let domain = (l1 >> 5) & 0xf;
            let l2a = (l1 & !0x3ff) as u64 + (((va >> 12) & 0xff) * 4) as u64;
            let d2 = read32(l2a).unwrap_or(0);
            match d2 & 3 {
                0 => return Err(fault(FaultKind::TranslationPage, domain)),
                0b01 => {
                    // large page, 64 KiB
                    let pa = (d2 & 0xffff_0000) as u64 | (va & 0xffff) as u64;
                    let ap = ((d2 >> 4) & 3) | (((d2 >> 9) & 1) << 2);
                    (pa, domain, ap, (d2 >> 15) & 1 != 0, Some(d2), false)
                }
                _ => {
                    let pa = (d2 & 0xffff_f000) as u64 | (va & 0xfff) as u64;
                    let ap = ((d2 >> 4) & 3) | (((d2 >> 9) & 1) << 2);
                    (pa, domain, ap, d2 & 1 != 0, Some(d2), false)
                }
            }
        }
        0b10 => {
            let ap = ((l1 >> 10) & 3) | (((l1 >> 15) & 1) << 2);
            let xn = (l1 >> 4) & 1 != 0;
            if l1 & (1 << 18) != 0 {
                // supersection, 16 MiB, domain 0
                let pa = (l1 & 0xff00_0000) as u64 | (va & 0x00ff_ffff) as u64;
                (pa, 0, ap, xn, None, true)
            } else {
                let pa = (l1 & 0xfff0_0000) as u64 | (va & 0x000f_ffff) as u64;
                (pa, (l1 >> 5) & 0xf, ap, xn, None, true)
            }
        }
        _ => return Err(fault(FaultKind::TranslationSection, 0)),
    };
    let dom = (r.dacr >> (2 * domain)) & 3;
    let (read, write, exec) = match dom {
        0b11 => (true, true, true),
        0b01 => {
            let (rd, wr) = ap_perms(ap, r.privileged);
            (rd, wr, rd && !xn)
        }
        _ => {
            let k = if section { FaultKind::DomainSection } else { FaultKind::DomainPage };
            return Err(fault(k, domain));
        }
    };
    let ok = match access {
        Access::Read => read,
        Access::Write => write,
        Access::Fetch => exec,
    };
    if !ok {
        let k = if section { FaultKind::PermissionSection } else { FaultKind::PermissionPage };
        return Err(fault(k, domain));
    }
    Ok(Translation { pa, perms: Perms { read, write, exec }, l1, l2 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn regs() -> MmuRegs {
        MmuRegs { sctlr: 1, ttbr0: 0x6000_8000, ttbr1: 0x6000_4000, ttbcr: 1, dacr: 0x5555_5555, privileged: true }
    }

    #[test]
    fn section_small_page_and_faults() {
        let mut mem: HashMap<u64, u32> = HashMap::new();
        // kernel section VA 0x80000000 -> 0x60000000, RW kernel, XN
        mem.insert(0x6000_4000 + 0x800 * 4, 0x6000_0000 | 0x140e | 0x10);
        // user VA 0x00400000 via TTBR0 L2 table at 0x60010000
        mem.insert(0x6000_8000 + 4 * 4, 0x6001_0000 | 1);
        mem.insert(0x6001_0000 + 0x05 * 4, 0x6123_4000 | 0x07f);
        let mut rd = |a: u64| mem.get(&a).copied();
        let r = regs();
        let t = translate(&r, 0x8001_2345, Access::Read, &mut rd).unwrap();
        assert_eq!(t.pa, 0x6001_2345);
        assert!(!t.perms.exec);
        let e = translate(&r, 0x8001_2345, Access::Fetch, &mut rd).unwrap_err();
        assert_eq!(e.kind, FaultKind::PermissionSection);
        let t = translate(&r, 0x0040_5abc, Access::Write, &mut rd).unwrap();
        assert_eq!(t.pa, 0x6123_4abc);
        let e = translate(&r, 0x0040_6000, Access::Read, &mut rd).unwrap_err();
        assert_eq!(e.fsr, 0b0111);
        let e = translate(&r, 0x0bad_c0de, Access::Read, &mut rd).unwrap_err();
        assert_eq!(e.fsr, 0b0101);
        // user mode may not touch the kernel section
        let u = MmuRegs { privileged: false, ..r };
        let e = translate(&u, 0x8000_0000, Access::Read, &mut rd).unwrap_err();
        assert_eq!(e.kind, FaultKind::PermissionSection);
        // domain no-access
        let d = MmuRegs { dacr: 0, ..r };
        let e = translate(&d, 0x8000_0000, Access::Read, &mut rd).unwrap_err();
        assert_eq!(e.fsr, 0b1001);
        // MMU off: identity
        let off = MmuRegs { sctlr: 0, ..r };
        assert_eq!(translate(&off, 0x1234, Access::Fetch, &mut rd).unwrap().pa, 0x1234);
    }

    #[test]
    fn ttbcr_split() {
        let r = regs();
        assert_eq!(l1_slot(&r, 0x7fff_ffff), 0x6000_8000 + 0x7ff * 4);
        assert_eq!(l1_slot(&r, 0x8000_0000), 0x6000_4000 + 0x800 * 4);
        let r0 = MmuRegs { ttbcr: 0, ..r };
        assert_eq!(l1_slot(&r0, 0xc000_0000), 0x6000_8000 + 0xc00 * 4);
    }
}
