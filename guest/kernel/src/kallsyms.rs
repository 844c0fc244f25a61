//! The kernel's own symbol table, for `PC is at func+0x1c/0x80` in oopses
//! (Linux's kallsyms and `%pS`). The build fills `KALLSYMS` in after
//! linking (emulator/build.rs patches the ELF, as Linux's kallsyms link
//! passes do); the layout is `cmaemu_abi::kallsyms`.
use cmaemu_abi::kallsyms::{Entry, Header, KALLSYMS_MAGIC, KALLSYMS_SIZE};

/// Filled in by the build; all zeros (no symbols) until then.
#[no_mangle]
#[used]
#[link_section = ".rodata.kallsyms"]
pub static KALLSYMS: [u8; KALLSYMS_SIZE] = [0; KALLSYMS_SIZE];

/// Byte `i` of the table, read so that the compiler cannot fold the
/// all-zero initialiser.
fn byte(i: usize) -> u8 {
    // SAFETY: i < KALLSYMS_SIZE (callers check); the static is readable.
    unsafe { core::ptr::read_volatile(KALLSYMS.as_ptr().add(i)) }
}

fn word(i: usize) -> u32 {
    if i + 4 > KALLSYMS_SIZE {
        return 0;
    }
    u32::from_le_bytes([byte(i), byte(i + 1), byte(i + 2), byte(i + 3)])
}

fn entry(i: usize) -> Entry {
    let at = core::mem::size_of::<Header>() + i * core::mem::size_of::<Entry>();
    Entry { addr: word(at), size: word(at + 4), name: word(at + 8) }
}

/// Write the NUL-terminated name at `off` of the string area.
fn write_name(off: usize, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
    let mut i = off;
    while i < KALLSYMS_SIZE {
        let c = byte(i);
        if c == 0 {
            break;
        }
        w.write_char(c as char)?;
        i += 1;
    }
    Ok(())
}

/// `sprint_symbol`: `name+0xoff/0xsize` for a kernel address, or the bare
/// address (`0x...`) outside every symbol, as `%pS` prints it.
pub fn sprint_symbol(addr: u32, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
    if word(0) == KALLSYMS_MAGIC {
        let count = word(4) as usize;
        // entries are sorted by address: the last one at or below `addr`
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if entry(mid).addr <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo > 0 {
            let e = entry(lo - 1);
            if addr - e.addr < e.size {
                write_name(e.name as usize, w)?;
                return write!(w, "+{:#x}/{:#x}", addr - e.addr, e.size);
            }
        }
    }
    write!(w, "{:#x}", addr)
}

/// `%pS` of an address, for `pr_info!` arguments.
pub struct Sym(pub u32);
impl core::fmt::Display for Sym {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        sprint_symbol(self.0, f)
    }
}
