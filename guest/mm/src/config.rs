//! Linux's build-time mm/CMA options as boot-time knobs (CMA.md,
//! "Configuration"), with two named profiles, and the early command-line
//! parameters the mm code reads (`cma=`, `coherent_pool=`, `memblock=`,
//! `trace_event=`).
//!
//! Order of application: the profile (`cmaemu.profile=`, wherever it appears
//! on the line) first, then each knob overrides it, then cross-checks
//! (`pageblock_order <= max_order - 1`).

use core::fmt;

use crate::cmdline::{early_cma, memparse, parameq, parse_uint_strict, Args, CmaCmdline, EarlyCmaError, FixedStr};

/// `CONFIG_CMA_AREAS` (7 in both profiles). Linux's array holds
/// `MAX_CMA_AREAS = 1 + CONFIG_CMA_AREAS` only on some configs; 6.1 defines
/// `MAX_CMA_AREAS` as `CONFIG_CMA_AREAS` when `CONFIG_CMA_AREAS` is set.
pub const CONFIG_CMA_AREAS: usize = 7;
/// `CONFIG_CMA_ALIGNMENT` (order 8 = 1 MiB): the cap on DMA allocation
/// alignment.
pub const CONFIG_CMA_ALIGNMENT: u32 = 8;
/// `DEFAULT_DMA_COHERENT_POOL_SIZE` (arch/arm/mm/dma-mapping.c), 256 KiB.
pub const DEFAULT_DMA_COHERENT_POOL_SIZE: u64 = 256 << 10;
/// Bytes kept of `trace_event=`.
pub const TRACE_EVENT_MAX: usize = 256;

/// A named kernel build being emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Debian 12's `armmp` Linux 6.1 (the reference).
    Debian61,
    /// BiscuitOS' Linux 5.0 build of the seed articles.
    Biscuitos50,
}

impl Profile {
    /// The spelling on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Debian61 => "debian-6.1",
            Self::Biscuitos50 => "biscuitos-5.0",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Debian61, Self::Biscuitos50].into_iter().find(|p| p.name() == s)
    }
}

/// `CONFIG_VMSPLIT_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmSplit {
    /// 3G/1G: `PAGE_OFFSET` 0xC0000000, 768 MiB of lowmem, HIGHMEM above.
    Split3G,
    /// 2G/2G: `PAGE_OFFSET` 0x80000000; a 1 GiB board is all lowmem.
    Split2G,
}

impl VmSplit {
    /// The spelling on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Split3G => "3G",
            Self::Split2G => "2G",
        }
    }

    /// `PAGE_OFFSET`.
    pub const fn page_offset(self) -> u64 {
        match self {
            Self::Split3G => 0xc000_0000,
            Self::Split2G => 0x8000_0000,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Split3G, Self::Split2G].into_iter().find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

/// `CONFIG_CMA_SIZE_SEL_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmaSizeSel {
    Mbytes,
    Percentage,
    Min,
    Max,
}

impl CmaSizeSel {
    /// The spelling on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Mbytes => "mbytes",
            Self::Percentage => "percentage",
            Self::Min => "min",
            Self::Max => "max",
        }
    }

    /// The Kconfig symbol.
    pub const fn kconfig(self) -> &'static str {
        match self {
            Self::Mbytes => "CONFIG_CMA_SIZE_SEL_MBYTES",
            Self::Percentage => "CONFIG_CMA_SIZE_SEL_PERCENTAGE",
            Self::Min => "CONFIG_CMA_SIZE_SEL_MIN",
            Self::Max => "CONFIG_CMA_SIZE_SEL_MAX",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Mbytes, Self::Percentage, Self::Min, Self::Max]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

/// Fault-injection switches (`cmaemu.inject=a,b,c`): each breaks one step
/// on purpose so that a host verifier can prove it catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Inject {
    /// Skip the TLB maintenance after rewriting a PTE during migration.
    SkipTlbFlush = 0,
    /// Skip copying the page contents during migration.
    SkipCopy = 1,
    /// Leave the PTEs unset after migration.
    SkipRemap = 2,
    /// Hand a non-contiguous buffer to a DMA master.
    DmaNoncontig = 3,
    /// Free a DMA buffer while the device is still writing to it.
    DmaAfterFree = 4,
    /// Don't return the old frame to the buddy after migration.
    LeakOldPage = 5,
    /// Migrate a pinned page anyway (ignore the extra reference).
    IgnorePin = 6,
    /// Leave CMA bitmap bits set after a release.
    LeakBitmap = 7,
    /// Leave a pageblock MIGRATE_ISOLATE after an allocation.
    LeakIsolation = 8,
    /// Relabel a CMA pageblock MOVABLE.
    WrongMigratetype = 9,
    /// Drop a mapped page's reference twice (freed while mapped).
    DoubleFree = 10,
    /// Unmap a user page without dropping its reference (never freed).
    MissedPutPage = 11,
    /// A pin that `unpin` never releases.
    LeakedPin = 12,
    /// The reverse-map walk of migration misses one mapping of a shared page.
    RmapMiss = 13,
    /// The camera writes into a user buffer page while it is migrated.
    DmaDuringMigration = 14,
    /// `lru_cache_disable` without draining the LRU add batch.
    SkipLruDrain = 15,
    /// `alloc_contig_range` without `drain_all_pages`.
    SkipPcpDrain = 16,
    /// Page tables allocated with a movable gfp (they may land in CMA).
    PgtableMovable = 17,
}

impl Inject {
    /// All switches, in bit order.
    pub const ALL: [Inject; 18] = [
        Self::SkipTlbFlush,
        Self::SkipCopy,
        Self::SkipRemap,
        Self::DmaNoncontig,
        Self::DmaAfterFree,
        Self::LeakOldPage,
        Self::IgnorePin,
        Self::LeakBitmap,
        Self::LeakIsolation,
        Self::WrongMigratetype,
        Self::DoubleFree,
        Self::MissedPutPage,
        Self::LeakedPin,
        Self::RmapMiss,
        Self::DmaDuringMigration,
        Self::SkipLruDrain,
        Self::SkipPcpDrain,
        Self::PgtableMovable,
    ];

    /// The spelling on the command line (`-` and `_` are interchangeable).
    pub const fn name(self) -> &'static str {
        match self {
            Self::SkipTlbFlush => "skip_tlb_flush",
            Self::SkipCopy => "skip_copy",
            Self::SkipRemap => "skip_remap",
            Self::DmaNoncontig => "dma_noncontig",
            Self::DmaAfterFree => "dma_after_free",
            Self::LeakOldPage => "leak_old_page",
            Self::IgnorePin => "ignore_pin",
            Self::LeakBitmap => "leak_bitmap",
            Self::LeakIsolation => "leak_isolation",
            Self::WrongMigratetype => "wrong_migratetype",
            Self::DoubleFree => "double_free",
            Self::MissedPutPage => "missed_put_page",
            Self::LeakedPin => "leaked_pin",
            Self::RmapMiss => "rmap_miss",
            Self::DmaDuringMigration => "dma_during_migration",
            Self::SkipLruDrain => "skip_lru_drain",
            Self::SkipPcpDrain => "skip_pcp_drain",
            Self::PgtableMovable => "pgtable_movable",
        }
    }

    /// Look a switch up by name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| parameq(i.name(), s))
    }
}

/// A set of [`Inject`] switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InjectSet(pub u32);

impl InjectSet {
    /// Is `i` on?
    pub const fn contains(self, i: Inject) -> bool {
        self.0 & (1 << i as u32) != 0
    }
    /// Turn `i` on.
    pub fn insert(&mut self, i: Inject) {
        self.0 |= 1 << i as u32;
    }
    /// The switches that are on.
    pub fn iter(self) -> impl Iterator<Item = Inject> {
        Inject::ALL.into_iter().filter(move |i| self.contains(*i))
    }
}

/// A malformed parameter. Display names the parameter and the value; the
/// kernel logs it and continues with the previous value in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// `param` needs `=value`.
    MissingValue { param: &'static str },
    /// Not a number (or trailing characters).
    BadNumber { param: &'static str, value: &'a str },
    /// A number outside `[min, max]`.
    OutOfRange { param: &'static str, value: &'a str, min: u64, max: u64 },
    /// Not one of the accepted words.
    UnknownValue { param: &'static str, value: &'a str, expected: &'static str },
    /// An unknown `cmaemu.inject` switch (the others are still set).
    UnknownInject { value: &'a str },
    /// `cma=` problems (see [`EarlyCmaError`]).
    Cma(EarlyCmaError<'a>),
    /// `coherent_pool=` had trailing characters (Linux ignores them; the
    /// parsed value is applied).
    CoherentPoolTrailing { value: &'a str },
    /// `trace_event=` longer than we keep.
    TooLong { param: &'static str, max: usize },
    /// `pageblock_order` must be at most `max_order - 1`: clamped.
    PageblockAboveMaxOrder { pageblock_order: u32, max_order: u32 },
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingValue { param } => write!(f, "{param}: missing value (expected {param}=...)"),
            Self::BadNumber { param, value } => write!(f, "{param}={value}: not a number"),
            Self::OutOfRange { param, value, min, max } => {
                write!(f, "{param}={value}: out of range (must be {min}..={max})")
            }
            Self::UnknownValue { param, value, expected } => {
                write!(f, "{param}={value}: unknown value (expected {expected})")
            }
            Self::UnknownInject { value } => {
                write!(f, "cmaemu.inject={value}: unknown fault-injection switch (known:")?;
                for i in Inject::ALL {
                    write!(f, " {}", i.name())?;
                }
                f.write_str(")")
            }
            Self::Cma(e) => fmt::Display::fmt(e, f),
            Self::CoherentPoolTrailing { value } => {
                write!(f, "coherent_pool={value}: ignoring trailing characters")
            }
            Self::TooLong { param, max } => write!(f, "{param}: value longer than {max} bytes, truncated"),
            Self::PageblockAboveMaxOrder { pageblock_order, max_order } => write!(
                f,
                "cmaemu.pageblock_order={pageblock_order}: must be below cmaemu.max_order={max_order}, using {}",
                max_order - 1
            ),
        }
    }
}

/// The options in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The profile the knobs started from.
    pub profile: Profile,
    /// `MAX_ORDER` (6.1 meaning: the number of buddy orders, 0..MAX_ORDER-1).
    pub max_order: u32,
    /// `pageblock_order`.
    pub pageblock_order: u32,
    /// `CONFIG_VMSPLIT_*`.
    pub vmsplit: VmSplit,
    /// `CONFIG_CMA_SIZE_MBYTES`.
    pub cma_size_mbytes: u64,
    /// `CONFIG_CMA_SIZE_SEL_*`.
    pub cma_size_sel: CmaSizeSel,
    /// `CONFIG_CMA_SIZE_PERCENTAGE`.
    pub cma_size_percentage: u64,
    /// `cma=` as given (`None` = `size_cmdline == -1`).
    pub cma: Option<CmaCmdline>,
    /// `coherent_pool=` (`atomic_pool_size`).
    pub coherent_pool: u64,
    /// `memblock=debug`.
    pub memblock_debug: bool,
    /// `sysctl.vm.min_free_kbytes=N` (or `sysctl/vm/min_free_kbytes`):
    /// Linux's `do_sysctl_args` writes it to `/proc/sys/vm/min_free_kbytes`
    /// once the initcalls ran (after `init_per_zone_wmark_min`), as if by
    /// hand: `user_min_free_kbytes`, then `setup_per_zone_wmarks`.
    pub sysctl_min_free_kbytes: Option<u64>,
    /// `cmaemu.inject=`.
    pub inject: InjectSet,
    /// `trace_event=`, raw.
    pub trace_event: FixedStr<TRACE_EVENT_MAX>,
}

impl Config {
    /// The options of a profile, before any knob.
    pub const fn for_profile(profile: Profile) -> Self {
        let (max_order, pageblock_order, vmsplit) = match profile {
            Profile::Debian61 => (12, 11, VmSplit::Split3G),
            Profile::Biscuitos50 => (11, 10, VmSplit::Split2G),
        };
        Self {
            profile,
            max_order,
            pageblock_order,
            vmsplit,
            cma_size_mbytes: 16,
            cma_size_sel: CmaSizeSel::Mbytes,
            cma_size_percentage: 10,
            cma: None,
            coherent_pool: DEFAULT_DMA_COHERENT_POOL_SIZE,
            memblock_debug: false,
            sysctl_min_free_kbytes: None,
            inject: InjectSet(0),
            trace_event: FixedStr::new(),
        }
    }

    /// `pageblock_nr_pages`.
    pub const fn pageblock_nr_pages(&self) -> u64 {
        1 << self.pageblock_order
    }

    /// `CMA_MIN_ALIGNMENT_PAGES` (6.1: `pageblock_nr_pages`; 5.0 used
    /// `max(MAX_ORDER - 1, pageblock_order)`, the same value in both
    /// profiles since pageblock_order == MAX_ORDER - 1 there).
    pub const fn cma_min_alignment_pages(&self) -> u64 {
        match self.profile {
            Profile::Debian61 => self.pageblock_nr_pages(),
            Profile::Biscuitos50 => {
                let o = if self.max_order - 1 > self.pageblock_order { self.max_order - 1 } else { self.pageblock_order };
                1 << o
            }
        }
    }

    /// `CMA_MIN_ALIGNMENT_BYTES`.
    pub const fn cma_min_alignment_bytes(&self) -> u64 {
        self.cma_min_alignment_pages() << crate::memblock::PAGE_SHIFT
    }

    /// `arm_lowmem_limit` for RAM `[ram_start, ram_end)`, as
    /// `adjust_lowmem_bounds()` computes it with the default `vmalloc=`:
    /// lowmem ends at `vmalloc_min = VMALLOC_END - (240 MiB) - VMALLOC_OFFSET`
    /// = 0xf0000000 in virtual space, i.e. `PAGE_OFFSET` plus 768 MiB (3G)
    /// or plus 1792 MiB (2G). Also `memblock.current_limit` and
    /// `__pa(high_memory)`.
    pub const fn lowmem_limit(&self, ram_start: u64, ram_end: u64) -> u64 {
        const VMALLOC_MIN: u64 = 0xff80_0000 - (240 << 20) - (8 << 20);
        let max_lowmem = VMALLOC_MIN - self.vmsplit.page_offset();
        let l = ram_start + max_lowmem;
        if l < ram_end {
            l
        } else {
            ram_end
        }
    }

    /// `/proc/cmaemu/config`: the values in force, `/proc/config.gz` style.
    pub fn write_proc_config<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "# cmaemu.profile={}", self.profile.name())?;
        writeln!(w, "CONFIG_ARCH_FORCE_MAX_ORDER={}", self.max_order)?;
        writeln!(w, "# pageblock_order={}", self.pageblock_order)?;
        let (split, highmem) = match self.vmsplit {
            VmSplit::Split3G => ("CONFIG_VMSPLIT_3G", true),
            VmSplit::Split2G => ("CONFIG_VMSPLIT_2G", false),
        };
        writeln!(w, "{split}=y")?;
        writeln!(w, "CONFIG_PAGE_OFFSET={:#x}", self.vmsplit.page_offset())?;
        if highmem {
            writeln!(w, "CONFIG_HIGHMEM=y")?;
        } else {
            writeln!(w, "# CONFIG_HIGHMEM is not set")?;
        }
        if self.profile == Profile::Debian61 {
            writeln!(w, "CONFIG_ZONE_DMA=y")?;
        } else {
            writeln!(w, "# CONFIG_ZONE_DMA is not set")?;
        }
        writeln!(w, "CONFIG_CMA=y")?;
        writeln!(w, "CONFIG_CMA_AREAS={CONFIG_CMA_AREAS}")?;
        writeln!(w, "CONFIG_CMA_SYSFS=y")?;
        writeln!(w, "CONFIG_CMA_DEBUGFS=y")?;
        writeln!(w, "CONFIG_DMA_CMA=y")?;
        writeln!(w, "CONFIG_CMA_SIZE_MBYTES={}", self.cma_size_mbytes)?;
        writeln!(w, "CONFIG_CMA_SIZE_PERCENTAGE={}", self.cma_size_percentage)?;
        for sel in [CmaSizeSel::Mbytes, CmaSizeSel::Percentage, CmaSizeSel::Min, CmaSizeSel::Max] {
            if sel == self.cma_size_sel {
                writeln!(w, "{}=y", sel.kconfig())?;
            } else {
                writeln!(w, "# {} is not set", sel.kconfig())?;
            }
        }
        writeln!(w, "CONFIG_CMA_ALIGNMENT={CONFIG_CMA_ALIGNMENT}")?;
        match self.cma {
            Some(c) => writeln!(w, "# cma={:#x}@{:#x}-{:#x}", c.size, c.base, c.limit)?,
            None => writeln!(w, "# cma= not given")?,
        }
        writeln!(w, "# coherent_pool={:#x}", self.coherent_pool)?;
        write!(w, "# cmaemu.inject=")?;
        let mut first = true;
        for i in self.inject.iter() {
            write!(w, "{}{}", if first { "" } else { "," }, i.name())?;
            first = false;
        }
        writeln!(w)?;
        if !self.trace_event.is_empty() {
            writeln!(w, "# trace_event={}", self.trace_event)?;
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::for_profile(Profile::Debian61)
    }
}

/// `process_sysctl_arg`: `sysctl.` or `sysctl/` then the path under
/// `/proc/sys`, `.` standing for `/`.
fn is_sysctl(param: &str, path: &str) -> bool {
    let Some(rest) = param.strip_prefix("sysctl").and_then(|r| r.strip_prefix(['.', '/'])) else {
        return false;
    };
    rest.len() == path.len() && rest.bytes().zip(path.bytes()).all(|(a, b)| a == b || (a == b'.' && b == b'/'))
}

fn uint_knob<'a>(param: &'static str, val: Option<&'a str>, min: u64, max: u64) -> Result<u64, CmdlineError<'a>> {
    let value = val.ok_or(CmdlineError::MissingValue { param })?;
    let v = parse_uint_strict(value).ok_or(CmdlineError::BadNumber { param, value })?;
    if v < min || v > max {
        return Err(CmdlineError::OutOfRange { param, value, min, max });
    }
    Ok(v)
}

/// Parse the boot command line into the options in force. Every problem
/// is passed to `diag` (the kernel logs it) and parsing continues; a
/// malformed knob leaves the previous value in force. Unknown parameters
/// are ignored (they belong to other subsystems).
pub fn parse_bootargs<'a>(cmdline: &'a str, diag: &mut dyn FnMut(CmdlineError<'a>)) -> Config {
    // The profile first, wherever it is (last one wins, as for any param).
    let mut profile = Profile::Debian61;
    for (param, val) in Args::new(cmdline) {
        if parameq(param, "cmaemu.profile") {
            match val {
                None => diag(CmdlineError::MissingValue { param: "cmaemu.profile" }),
                Some(v) => match Profile::parse(v) {
                    Some(p) => profile = p,
                    None => diag(CmdlineError::UnknownValue {
                        param: "cmaemu.profile",
                        value: v,
                        expected: "debian-6.1 or biscuitos-5.0",
                    }),
                },
            }
        }
    }
    let mut c = Config::for_profile(profile);
    for (param, val) in Args::new(cmdline) {
        let mut report = |r: Result<(), CmdlineError<'a>>| {
            if let Err(e) = r {
                diag(e)
            }
        };
        if parameq(param, "cmaemu.max_order") {
            // 2..=14: at least one order above 0, at most 32 MiB blocks
            report(uint_knob("cmaemu.max_order", val, 2, 14).map(|v| c.max_order = v as u32));
        } else if parameq(param, "cmaemu.pageblock_order") {
            report(uint_knob("cmaemu.pageblock_order", val, 0, 13).map(|v| c.pageblock_order = v as u32));
        } else if parameq(param, "cmaemu.vmsplit") {
            report(match val {
                None => Err(CmdlineError::MissingValue { param: "cmaemu.vmsplit" }),
                Some(v) => VmSplit::parse(v).map(|s| c.vmsplit = s).ok_or(CmdlineError::UnknownValue {
                    param: "cmaemu.vmsplit",
                    value: v,
                    expected: "3G or 2G",
                }),
            });
        } else if parameq(param, "cmaemu.cma_size_mbytes") {
            // CONFIG_CMA_SIZE_MBYTES range in Kconfig: 0..=1024 on 32-bit
            report(uint_knob("cmaemu.cma_size_mbytes", val, 0, 4096).map(|v| c.cma_size_mbytes = v));
        } else if parameq(param, "cmaemu.cma_size_sel") {
            report(match val {
                None => Err(CmdlineError::MissingValue { param: "cmaemu.cma_size_sel" }),
                Some(v) => CmaSizeSel::parse(v).map(|s| c.cma_size_sel = s).ok_or(CmdlineError::UnknownValue {
                    param: "cmaemu.cma_size_sel",
                    value: v,
                    expected: "mbytes, percentage, min or max",
                }),
            });
        } else if parameq(param, "cmaemu.cma_size_percentage") {
            // Kconfig range 0..=100
            report(uint_knob("cmaemu.cma_size_percentage", val, 0, 100).map(|v| c.cma_size_percentage = v));
        } else if parameq(param, "cmaemu.inject") {
            match val {
                None => diag(CmdlineError::MissingValue { param: "cmaemu.inject" }),
                Some(v) => {
                    for name in v.split(',').filter(|n| !n.is_empty()) {
                        match Inject::from_name(name) {
                            Some(i) => c.inject.insert(i),
                            None => diag(CmdlineError::UnknownInject { value: name }),
                        }
                    }
                }
            }
        } else if parameq(param, "trace_event") {
            let (s, truncated) = FixedStr::from_str_truncate(val.unwrap_or(""));
            c.trace_event = s;
            if truncated {
                diag(CmdlineError::TooLong { param: "trace_event", max: TRACE_EVENT_MAX });
            }
        } else if parameq(param, "cma") {
            match early_cma(val) {
                Ok((cma, warn)) => {
                    c.cma = Some(cma);
                    if let Some(w) = warn {
                        diag(CmdlineError::Cma(w));
                    }
                }
                Err(e) => diag(CmdlineError::Cma(e)),
            }
        } else if parameq(param, "coherent_pool") {
            // early_coherent_pool(): atomic_pool_size = memparse(p, &p)
            match val {
                None => diag(CmdlineError::MissingValue { param: "coherent_pool" }),
                Some(v) => {
                    let (size, rest) = memparse(v);
                    c.coherent_pool = size;
                    if !rest.is_empty() || v.is_empty() {
                        diag(CmdlineError::CoherentPoolTrailing { value: v });
                    }
                }
            }
        } else if is_sysctl(param, "vm/min_free_kbytes") {
            // proc_dointvec_minmax, extra1 = SYSCTL_ZERO: 0..=INT_MAX
            report(uint_knob("sysctl.vm.min_free_kbytes", val, 0, i32::MAX as u64).map(|v| c.sysctl_min_free_kbytes = Some(v)));
        } else if parameq(param, "memblock") {
            // early_memblock(): strstr(p, "debug")
            if val.is_some_and(|v| v.contains("debug")) {
                c.memblock_debug = true;
            }
        }
    }
    if c.pageblock_order > c.max_order - 1 {
        diag(CmdlineError::PageblockAboveMaxOrder { pageblock_order: c.pageblock_order, max_order: c.max_order });
        c.pageblock_order = c.max_order - 1;
    }
    c
}

#[cfg(test)]
mod tests;
