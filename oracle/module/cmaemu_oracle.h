/* SPDX-License-Identifier: GPL-2.0 */
/* The ioctl contract between cmaemu_oracle.ko and the oracle program. */
#ifndef CMAEMU_ORACLE_H
#define CMAEMU_ORACLE_H
#include <linux/ioctl.h>
#include <linux/types.h>

#define ORACLE_NAME_LEN 48

struct oracle_dma {
	char area[ORACLE_NAME_LEN];	/* in: the area (memory-region node name) */
	__u32 pages;			/* in: alloc size; out: pages freed */
	__u32 pfn;			/* out: first pfn (0: failed) */
};

struct oracle_pin {
	__u32 start;	/* user VA of the first page */
	__u32 pages;	/* in: how many; out: how many pinned */
	__u32 pfn;	/* out: pfn of the first pinned page */
};

/*
 * Free CMA pages of one zone as the kernel holds them: the counter
 * /proc/meminfo's CmaFree reads (vm_stat, folded), the same counter with
 * this CPU's not yet folded vm_stat_diff added (zone_page_state_snapshot),
 * and the CMA pages parked on the per-CPU free lists (freed by
 * free_unref_page, or taken off the buddy by rmqueue_bulk: counted in
 * neither).
 */
struct oracle_cmastat {
	__u32 zone;		/* in: zone index; out: ZONES past the last */
	char name[16];		/* out: zone name ("" when out of range) */
	__u32 cma_pages;	/* out: zone->cma_pages */
	__u32 counted;		/* out: zone_page_state(NR_FREE_CMA_PAGES) */
	__u32 snapshot;		/* out: zone_page_state_snapshot(NR_FREE_CMA_PAGES) */
	__u32 pcp;		/* out: pages on the per-CPU lists whose pcppage migratetype is MIGRATE_CMA */
	__u32 pcp_count;	/* out: pcp->count, every CPU */
	__u32 batch;		/* out: pcp->batch (CPU 0) */
	__u32 threshold;	/* out: the zone's stat_threshold (CPU 0's per_cpu_zonestats) */
};

#define ORACLE_DMA_ALLOC _IOWR('C', 1, struct oracle_dma)
#define ORACLE_DMA_FREE  _IOWR('C', 2, struct oracle_dma)	/* the oldest live allocation of the area */
#define ORACLE_PIN       _IOWR('C', 3, struct oracle_pin)
#define ORACLE_UNPIN     _IOWR('C', 4, struct oracle_pin)	/* every pin */
#define ORACLE_AREAS     _IOWR('C', 5, struct oracle_dma)	/* pages = index; area out ("" past the end) */
#define ORACLE_CMASTAT   _IOWR('C', 6, struct oracle_cmastat)
#define ORACLE_NR_FREE   _IOR('C', 7, __u32)	/* NR_FREE_PAGES of every zone, exact (zone_page_state_snapshot) */
#endif
