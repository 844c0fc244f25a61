//! `/proc/iomem`'s device resources, named as Linux 6.1 names them: an
//! AMBA (primecell) device's resource carries its DT node's full name
//! (`clcd@10020000`); a driver that maps its registers with
//! `devm_ioremap_resource` requests them again, nested under it, as
//! `"<dev_name> <resource name>"` (lib/devres.c), where `dev_name` is
//! `<address>.<node name>` (`of_device_make_bus_id`). Platform devices have
//! only the driver's request. Drivers that map with `of_iomap` (the SP804
//! timer, the GIC) request nothing.
use crate::drivers::map;
use core::fmt::Write;

/// How a device shows up.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// AMBA device whose driver requests its registers (PL011, PL111).
    AmbaClaimed,
    /// AMBA device whose driver uses `of_iomap` (SP804).
    Amba,
    /// Platform device whose driver requests its registers.
    Platform,
}

struct Dev {
    pa: u32,
    compatible: &'static str,
    kind: Kind,
}

const DEVS: [Dev; 5] = [
    Dev { pa: map::SYSREGS, compatible: "arm,vexpress-sysreg", kind: Kind::Platform },
    Dev { pa: map::UART0, compatible: "arm,pl011", kind: Kind::AmbaClaimed },
    Dev { pa: map::TIMER01, compatible: "arm,sp804", kind: Kind::Amba },
    Dev { pa: crate::video::CLCD_PA, compatible: "arm,pl111", kind: Kind::AmbaClaimed },
    Dev { pa: crate::video::CAMERA_PA, compatible: "cmaemu,camera-v1", kind: Kind::Platform },
];

/// The DT node (full name) of each device, once probed.
static NODES: crate::arch::Guarded<[Option<&'static str>; 5]> = crate::arch::Guarded::new_with([None; 5]);

/// The unit address of a node name (`uart@9000` -> 0x9000).
fn unit_address(name: &str) -> Option<u32> {
    u32::from_str_radix(name.split_once('@')?.1, 16).ok()
}

/// Find our devices' nodes. A node matches by `compatible` and by its unit
/// address: the physical address, or its offset in the motherboard's
/// 0x10000000 window (Linux's vexpress tree puts them under `iofpga`
/// with `ranges`).
pub fn probe(fdt: &fdt::Fdt<'static>) {
    for node in fdt.all_nodes() {
        let Some(unit) = unit_address(node.name) else { continue };
        for (i, d) in DEVS.iter().enumerate() {
            if (unit == d.pa || unit == d.pa & 0xf_ffff) && crate::dt::is_compatible(&node, d.compatible) {
                NODES.with(|n| *n[i].get_or_insert(node.name));
            }
        }
    }
}

/// The device lines, by address.
pub fn show(out: &mut dyn Write) {
    let nodes = NODES.with(|n| *n).unwrap_or([None; 5]);
    for (d, node) in DEVS.iter().zip(nodes) {
        let Some(node) = node else { continue };
        if d.compatible == "cmaemu,camera-v1" && !crate::video::camera_present() {
            continue;
        }
        let (start, end) = (d.pa, d.pa + 0xfff);
        let base = node.split('@').next().unwrap_or(node);
        match d.kind {
            Kind::Amba => {
                let _ = writeln!(out, "{:08x}-{:08x} : {}", start, end, node);
            }
            Kind::AmbaClaimed => {
                let _ = writeln!(out, "{:08x}-{:08x} : {}", start, end, node);
                let _ = writeln!(out, "  {:08x}-{:08x} : {:x}.{} {}", start, end, d.pa, base, node);
            }
            Kind::Platform => {
                let _ = writeln!(out, "{:08x}-{:08x} : {:x}.{} {}", start, end, d.pa, base, node);
            }
        }
    }
}
