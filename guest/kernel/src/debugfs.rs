//! The CMA files under /sys/kernel/debug/cma/<name>/ and
//! /sys/kernel/mm/cma/<name>/: reading the views of `cmaemu_mm`, and the
//! debugfs `alloc` / `free` writes (`cma_alloc` / `cma_release` with
//! migration).
use crate::cma::{KLog, KTrace};
use crate::migrate::with_contig;
use crate::mm::Mm;
use crate::println;
use core::fmt;

/// Files under /sys/kernel/debug/cma/<name>/ and /sys/kernel/mm/cma/<name>/.
pub fn cat(mm: &Mm, path: &str, out: &mut dyn fmt::Write) -> bool {
    let Some(areas) = &mm.areas else { return false };
    let (dir, rest) = if let Some(r) = path.strip_prefix("/sys/kernel/debug/cma/") {
        (0, r)
    } else if let Some(r) = path.strip_prefix("/sys/kernel/mm/cma/") {
        (1, r)
    } else {
        return false;
    };
    let Some((name, file)) = rest.rsplit_once('/') else { return false };
    let Some(id) = areas.find_by_name(name) else { return false };
    let c = areas.get(id);
    let mut w = FmtAdapter(out);
    let r = match (dir, file) {
        (0, "count") => c.debugfs_count(&mut w),
        (0, "used") => c.debugfs_used(&mut w),
        (0, "maxchunk") => c.debugfs_maxchunk(&mut w),
        (0, "order_per_bit") => c.debugfs_order_per_bit(&mut w),
        (0, "base_pfn") => c.debugfs_base_pfn(&mut w),
        (0, "bitmap") => c.debugfs_bitmap(&mut w),
        (1, "alloc_pages_success") => c.sysfs_alloc_pages_success(&mut w),
        (1, "alloc_pages_fail") => c.sysfs_alloc_pages_fail(&mut w),
        _ => return false,
    };
    let _ = r;
    true
}

struct FmtAdapter<'a>(&'a mut dyn fmt::Write);
impl fmt::Write for FmtAdapter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s)
    }
}

/// `echo N > /sys/kernel/debug/cma/<name>/alloc` and `…/free`.
pub fn write(mm: &mut Mm, path: &str, val: &str) -> Option<bool> {
    let rest = path.strip_prefix("/sys/kernel/debug/cma/")?;
    let (name, file) = rest.rsplit_once('/')?;
    let id = mm.areas.as_ref()?.find_by_name(name)?;
    let Ok(n) = val.parse::<u64>() else {
        println!("sh: write error: Invalid argument");
        return Some(true);
    };
    let r = match file {
        "alloc" => with_contig(mm, id.0 as u32, |areas, cc| areas.cma_debugfs_alloc(id, n, cc, &mut KTrace, &mut KLog))?,
        "free" => with_contig(mm, id.0 as u32, |areas, cc| areas.cma_debugfs_free(id, n, cc, &mut KTrace))?,
        _ => return None,
    };
    if let Err(e) = r {
        match e.strerror() {
            Some(m) => println!("sh: write error: {}", m),
            None => println!("sh: write error: {}", e),
        }
    }
    Some(true)
}
