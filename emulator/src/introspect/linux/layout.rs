//! Where things are in one Linux build: offsets, sizes and constants from
//! vmcoreinfo (read from the running kernel) and from the build's debug
//! information (what vmcoreinfo does not carry), checked against each
//! other where both say something.
use super::debuginfo::{DebugInfo, DebugInfoError};
use super::vmcoreinfo::{VmcoreError, VmcoreInfo};

/// Why a layout could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Vmcore(#[from] VmcoreError),
    #[error(transparent)]
    Debug(#[from] DebugInfoError),
    /// vmcoreinfo and the debug information disagree: not the same build.
    #[error("vmcoreinfo and the debug info disagree on {what}: {vmcore} vs {debug} (a vmlinux from another build?)")]
    Mismatch { what: &'static str, vmcore: String, debug: String },
    #[error("unsupported kernel configuration: {0}")]
    Unsupported(String),
}

/// The layout of the structures the readers walk (ARM32, FLATMEM, one node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub osrelease: String,
    // symbols (kernel virtual addresses)
    pub mem_map: u32,
    pub contig_page_data: u32,
    pub init_uts_ns: u32,
    pub cma_areas: u32,
    pub cma_area_count: u32,
    pub totalcma_pages: u32,
    pub per_cpu_offset: u32,
    // struct page
    pub page_size: u32,
    pub page_flags: u32,
    pub page_refcount: u32,
    pub page_mapcount: u32,
    pub page_private: u32,
    pub page_mapping: u32,
    pub page_lru: u32,
    pub page_compound_head: u32,
    /// `OFFSET(page.compound_order)` (in a compound folio's second page).
    pub page_compound_order: Option<u32>,
    // pglist_data
    pub pgdat_node_zones: u32,
    pub pgdat_nr_zones: u32,
    pub pgdat_start_pfn: u32,
    pub pgdat_spanned: u32,
    pub uts_name: u32,
    // zone
    pub zone_size: u32,
    pub zone_free_area: u32,
    pub zone_vm_stat: u32,
    pub zone_start_pfn: u32,
    pub zone_spanned: u32,
    pub zone_present: u32,
    pub zone_managed: u32,
    pub zone_cma_pages: u32,
    pub zone_name: u32,
    pub zone_pageblock_flags: u32,
    pub zone_nr_isolate: u32,
    pub zone_pcp: u32,
    pub zone_pcp_stats: u32,
    pub free_area_size: u32,
    pub free_area_free_list: u32,
    pub free_area_nr_free: u32,
    // per-cpu
    pub pcp_count: u32,
    pub pcp_lists: u32,
    pub pcp_nr_lists: u32,
    pub zonestat_diff: u32,
    // struct cma
    pub cma_size: u32,
    pub cma_base_pfn: u32,
    pub cma_count: u32,
    pub cma_bitmap: u32,
    pub cma_order_per_bit: u32,
    pub cma_name: u32,
    pub cma_name_len: u32,
    pub max_cma_areas: u32,
    // numbers
    pub max_order: u32,
    pub migrate_types: u32,
    pub migrate_pcptypes: u32,
    pub migrate_cma: u32,
    pub migrate_isolate: u32,
    pub pageblock_order: u32,
    pub nr_pageblock_bits: u32,
    /// `MIGRATETYPE_MASK`: bits `PB_migrate..=PB_migrate_end`.
    pub migratetype_mask: u32,
    pub nr_free_pages_item: u32,
    pub nr_free_cma_item: u32,
    pub pg_lru: u32,
    pub pg_slab: u32,
    pub pg_reserved: u32,
    pub pg_head_mask: u32,
    pub pg_swapbacked: u32,
    pub buddy_mapcount: i32,
    pub table_mapcount: Option<i32>,
    // tasks and their page tables
    pub init_task: u32,
    pub task_tasks: u32,
    pub task_mm: u32,
    pub task_pid: u32,
    pub mm_pgd: u32,
    /// `vm_area_struct.vm_mm`.
    pub vma_mm: u32,
    /// `MAX_SWAPFILES` (the length of `swap_info`): the swap types from
    /// here up are special entries.
    pub max_swapfiles: u32,
    /// `SWP_HWPOISON_NUM` (1 with CONFIG_MEMORY_FAILURE).
    pub swp_hwpoison_num: u32,
}

impl Layout {
    /// Whether swap type `ty` is a migration entry's (`SWP_MIGRATION_READ`,
    /// `_READ_EXCLUSIVE`, `_WRITE`: the three after the hwpoison type).
    pub fn is_migration_type(&self, ty: u32) -> bool {
        let first = self.max_swapfiles + self.swp_hwpoison_num;
        (first..first + 3).contains(&ty)
    }
}

impl Layout {
    /// From the running kernel's vmcoreinfo and its build's debug info.
    pub fn new(v: &VmcoreInfo, d: &DebugInfo) -> Result<Layout, LayoutError> {
        if let (Some(a), Some(b)) = (&v.build_id, &d.build_id) {
            if !b.starts_with(a.as_str()) && !a.starts_with(b.as_str()) {
                return Err(LayoutError::Mismatch { what: "BUILD-ID", vmcore: a.clone(), debug: b.clone() });
            }
        }
        let both = |what: &'static str, vm: u32, ty: &str, m: &str| -> Result<u32, LayoutError> {
            let dv = d.offset(ty, m)?;
            if dv != vm {
                return Err(LayoutError::Mismatch { what, vmcore: vm.to_string(), debug: dv.to_string() });
            }
            Ok(vm)
        };
        let page_size = v.size("page")?;
        if d.size("page")? != page_size {
            return Err(LayoutError::Mismatch { what: "sizeof(struct page)", vmcore: page_size.to_string(), debug: d.size("page")?.to_string() });
        }
        let max_order = v.length("zone.free_area")?;
        let migrate_types = v.length("free_area.free_list")?;
        if d.enumerator("MIGRATE_TYPES")? as u32 != migrate_types {
            return Err(LayoutError::Mismatch { what: "MIGRATE_TYPES", vmcore: migrate_types.to_string(), debug: d.enumerator("MIGRATE_TYPES")?.to_string() });
        }
        // pageblock_order: a variable with CONFIG_HUGETLB_PAGE_SIZE_VARIABLE,
        // else HUGETLB_PAGE_ORDER with hugetlb, else MAX_ORDER - 1.
        if d.has_symbol("pageblock_order") || d.has_symbol("hstates") {
            return Err(LayoutError::Unsupported("pageblock_order depends on CONFIG_HUGETLB_PAGE (only kernels without it are read)".into()));
        }
        let pageblock_order = max_order - 1;
        let pcp_lists = d.member("per_cpu_pages", "lists")?;
        let pcp_nr_lists = pcp_lists.count.unwrap_or(0);
        let migrate_pcptypes = d.enumerator("MIGRATE_PCPTYPES")? as u32;
        if pcp_nr_lists == 0 || pcp_nr_lists % migrate_pcptypes != 0 {
            return Err(LayoutError::Unsupported(format!("{pcp_nr_lists} per-cpu lists (a THP list?)")));
        }
        let cma_name = d.member("cma", "name")?;
        let buddy = v.number("PAGE_BUDDY_MAPCOUNT_VALUE")? as i32;
        let table_mapcount = d.enumerator("PG_table").ok().map(|t| !(t as i32));
        Ok(Layout {
            osrelease: v.osrelease.clone(),
            mem_map: v.symbol("mem_map")?,
            contig_page_data: v.symbol("contig_page_data")?,
            init_uts_ns: v.symbol("init_uts_ns")?,
            cma_areas: d.symbol("cma_areas")?,
            cma_area_count: d.symbol("cma_area_count")?,
            totalcma_pages: d.symbol("totalcma_pages")?,
            per_cpu_offset: d.symbol("__per_cpu_offset")?,
            page_size,
            page_flags: both("page.flags", v.offset("page.flags")?, "page", "flags")?,
            page_refcount: both("page._refcount", v.offset("page._refcount")?, "page", "_refcount")?,
            page_mapcount: both("page._mapcount", v.offset("page._mapcount")?, "page", "_mapcount")?,
            page_private: both("page.private", v.offset("page.private")?, "page", "private")?,
            page_mapping: both("page.mapping", v.offset("page.mapping")?, "page", "mapping")?,
            page_lru: both("page.lru", v.offset("page.lru")?, "page", "lru")?,
            page_compound_head: both("page.compound_head", v.offset("page.compound_head")?, "page", "compound_head")?,
            page_compound_order: v.offset("page.compound_order").ok(),
            pgdat_node_zones: v.offset("pglist_data.node_zones")?,
            pgdat_nr_zones: v.offset("pglist_data.nr_zones")?,
            pgdat_start_pfn: v.offset("pglist_data.node_start_pfn")?,
            pgdat_spanned: v.offset("pglist_data.node_spanned_pages")?,
            uts_name: v.offset("uts_namespace.name")?,
            zone_size: v.size("zone")?,
            zone_free_area: both("zone.free_area", v.offset("zone.free_area")?, "zone", "free_area")?,
            zone_vm_stat: both("zone.vm_stat", v.offset("zone.vm_stat")?, "zone", "vm_stat")?,
            zone_start_pfn: d.offset("zone", "zone_start_pfn")?,
            zone_spanned: both("zone.spanned_pages", v.offset("zone.spanned_pages")?, "zone", "spanned_pages")?,
            zone_present: d.offset("zone", "present_pages")?,
            zone_managed: d.offset("zone", "managed_pages")?,
            zone_cma_pages: d.offset("zone", "cma_pages")?,
            zone_name: d.offset("zone", "name")?,
            zone_pageblock_flags: d.offset("zone", "pageblock_flags")?,
            zone_nr_isolate: d.offset("zone", "nr_isolate_pageblock")?,
            zone_pcp: d.offset("zone", "per_cpu_pageset")?,
            zone_pcp_stats: d.offset("zone", "per_cpu_zonestats")?,
            free_area_size: v.size("free_area")?,
            free_area_free_list: v.offset("free_area.free_list")?,
            free_area_nr_free: d.offset("free_area", "nr_free")?,
            pcp_count: d.offset("per_cpu_pages", "count")?,
            pcp_lists: pcp_lists.offset,
            pcp_nr_lists,
            zonestat_diff: d.offset("per_cpu_zonestat", "vm_stat_diff")?,
            cma_size: d.size("cma")?,
            cma_base_pfn: d.offset("cma", "base_pfn")?,
            cma_count: d.offset("cma", "count")?,
            cma_bitmap: d.offset("cma", "bitmap")?,
            cma_order_per_bit: d.offset("cma", "order_per_bit")?,
            cma_name: cma_name.offset,
            cma_name_len: cma_name.count.unwrap_or(cma_name.size),
            max_cma_areas: d.array_len("cma_areas")?,
            max_order,
            migrate_types,
            migrate_pcptypes,
            migrate_cma: d.enumerator("MIGRATE_CMA")? as u32,
            migrate_isolate: d.enumerator("MIGRATE_ISOLATE")? as u32,
            pageblock_order,
            nr_pageblock_bits: d.enumerator("NR_PAGEBLOCK_BITS")? as u32,
            migratetype_mask: (1u32 << (d.enumerator("PB_migrate_end")? as u32 + 1)) - 1,
            nr_free_pages_item: v.number("NR_FREE_PAGES")? as u32,
            nr_free_cma_item: d.enumerator("NR_FREE_CMA_PAGES")? as u32,
            pg_lru: v.number("PG_lru")? as u32,
            pg_slab: v.number("PG_slab")? as u32,
            pg_reserved: d.enumerator("PG_reserved")? as u32,
            pg_head_mask: v.number("PG_head_mask")? as u32,
            pg_swapbacked: v.number("PG_swapbacked")? as u32,
            buddy_mapcount: buddy,
            table_mapcount,
            init_task: d.symbol("init_task")?,
            task_tasks: d.offset("task_struct", "tasks")?,
            task_mm: d.offset("task_struct", "mm")?,
            task_pid: d.offset("task_struct", "pid")?,
            mm_pgd: d.offset("mm_struct", "pgd")?,
            vma_mm: d.offset("vm_area_struct", "vm_mm")?,
            max_swapfiles: d.array_len("swap_info")?,
            swp_hwpoison_num: d.has_symbol("memory_failure") as u32,
        })
    }
}
