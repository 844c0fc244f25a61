// SPDX-License-Identifier: GPL-2.0
/*
 * cmaemu's differential oracle, the kernel half: the guest shell's
 * operations on the real kernel (Debian 6.1 armmp).
 *
 * - Every DT node compatible "cmaemu,dma-test" becomes a platform device
 *   that gets its CMA area from its `memory-region` (of_reserved_mem_device_init,
 *   as the seed's drivers do). ORACLE_DMA_ALLOC allocates N pages from the
 *   area named by the node its memory-region points at, with
 *   dma_alloc_coherent (so cma_alloc with align = min(order, CMA_ALIGNMENT));
 *   ORACLE_DMA_FREE frees that area's oldest live allocation.
 * - ORACLE_PIN / ORACLE_UNPIN: pin_user_pages (FOLL_WRITE, not LONGTERM:
 *   the page stays where it is and its extra reference makes migration
 *   fail, as the guest's `pin`) and unpin_user_pages.
 * - The seed article's cma_test misc device (each write allocates the next
 *   free slot i of (i + 1) MiB, each read frees the lowest), printing its
 *   addresses as numbers (the seed's %p is hashed since 4.15).
 *
 * Debian's 6.1 has CONFIG_CMA_DEBUGFS off and does not export cma_alloc:
 * the DMA API is the way in.
 */
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/vmstat.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/platform_device.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "cmaemu_oracle.h"

#define MAX_DEVS 8
#define MAX_PINS 4096

struct oracle_dev {
	struct device *dev;
	char area[ORACLE_NAME_LEN];
};

struct oracle_buf {
	struct list_head list;
	int dev;
	void *cpu;
	dma_addr_t handle;
	size_t size;
};

static struct oracle_dev devs[MAX_DEVS];
static int ndevs;
static LIST_HEAD(bufs);
static DEFINE_MUTEX(lock);
static struct page *pins[MAX_PINS];
static unsigned int npins;

static int find_dev(const char *area)
{
	int i;

	for (i = 0; i < ndevs; i++)
		if (!strcmp(devs[i].area, area))
			return i;
	return -1;
}

static long dma_alloc_op(struct oracle_dma *d)
{
	struct oracle_buf *b;
	int i = find_dev(d->area);

	d->pfn = 0;
	if (i < 0)
		return -ENODEV;
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->size = (size_t)d->pages << PAGE_SHIFT;
	b->cpu = dma_alloc_coherent(devs[i].dev, b->size, &b->handle, GFP_KERNEL);
	if (!b->cpu) {
		kfree(b);
		return 0;
	}
	b->dev = i;
	list_add_tail(&b->list, &bufs);
	d->pfn = (u32)(b->handle >> PAGE_SHIFT);
	return 0;
}

static long dma_free_op(struct oracle_dma *d)
{
	struct oracle_buf *b;
	int i = find_dev(d->area);

	d->pfn = 0;
	d->pages = 0;
	if (i < 0)
		return -ENODEV;
	list_for_each_entry(b, &bufs, list) {
		if (b->dev != i)
			continue;
		d->pfn = (u32)(b->handle >> PAGE_SHIFT);
		d->pages = b->size >> PAGE_SHIFT;
		dma_free_coherent(devs[i].dev, b->size, b->cpu, b->handle);
		list_del(&b->list);
		kfree(b);
		break;
	}
	return 0;
}

static long pin_op(struct oracle_pin *p)
{
	long got;
	unsigned int want = min_t(unsigned int, p->pages, MAX_PINS - npins);

	p->pfn = 0;
	mmap_read_lock(current->mm);
	got = pin_user_pages(p->start, want, FOLL_WRITE, pins + npins, NULL);
	mmap_read_unlock(current->mm);
	if (got < 0)
		return got;
	if (got > 0)
		p->pfn = page_to_pfn(pins[npins]);
	npins += got;
	p->pages = got;
	return 0;
}

/* pindex_to_order without THP's extra list (Debian's armmp has no THP). */
static unsigned int pcp_pindex_order(unsigned int pindex)
{
	return pindex / MIGRATE_PCPTYPES;
}

static long cmastat_op(struct oracle_cmastat *c)
{
	struct zone *zone;
	unsigned long flags;
	unsigned int cpu, i;
	u32 pcp = 0, count = 0;

	memset(c->name, 0, sizeof(c->name));
	c->cma_pages = c->counted = c->snapshot = c->pcp = c->pcp_count = c->batch = c->threshold = 0;
	if (c->zone >= MAX_NR_ZONES) {
		c->zone = MAX_NR_ZONES;
		return 0;
	}
	zone = &NODE_DATA(0)->node_zones[c->zone];
	strscpy(c->name, zone->name, sizeof(c->name));
	if (!populated_zone(zone))
		return 0;
#ifdef CONFIG_CMA
	c->cma_pages = zone->cma_pages;
#endif
	/* one CPU (QEMU's vexpress-a9): with interrupts off nothing moves
	 * pages between the buddy, the counters and the lists meanwhile */
	local_irq_save(flags);
	c->counted = zone_page_state(zone, NR_FREE_CMA_PAGES);
	c->snapshot = zone_page_state_snapshot(zone, NR_FREE_CMA_PAGES);
	for_each_online_cpu(cpu) {
		struct per_cpu_pages *p = per_cpu_ptr(zone->per_cpu_pageset, cpu);

		spin_lock(&p->lock);
		count += p->count;
		for (i = 0; i < NR_PCP_LISTS; i++) {
			struct page *page;

			/* free_unref_page_prepare and __rmqueue_smallest keep the
			 * block's migratetype in page->index (get_pcppage_migratetype) */
			list_for_each_entry(page, &p->lists[i], pcp_list)
				if (is_migrate_cma(page->index))
					pcp += 1u << pcp_pindex_order(i);
		}
		spin_unlock(&p->lock);
	}
	local_irq_restore(flags);
	c->pcp = pcp;
	c->pcp_count = count;
	c->batch = per_cpu_ptr(zone->per_cpu_pageset, cpumask_first(cpu_online_mask))->batch;
	c->threshold = per_cpu_ptr(zone->per_cpu_zonestats, cpumask_first(cpu_online_mask))->stat_threshold;
	return 0;
}

static long oracle_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct oracle_dma d;
	struct oracle_pin p;
	long ret = 0;

	mutex_lock(&lock);
	switch (cmd) {
	case ORACLE_DMA_ALLOC:
	case ORACLE_DMA_FREE:
	case ORACLE_AREAS:
		if (copy_from_user(&d, (void __user *)arg, sizeof(d))) {
			ret = -EFAULT;
			break;
		}
		d.area[ORACLE_NAME_LEN - 1] = 0;
		if (cmd == ORACLE_DMA_ALLOC)
			ret = dma_alloc_op(&d);
		else if (cmd == ORACLE_DMA_FREE)
			ret = dma_free_op(&d);
		else if (d.pages < ndevs)
			strscpy(d.area, devs[d.pages].area, ORACLE_NAME_LEN);
		else
			d.area[0] = 0;
		if (!ret && copy_to_user((void __user *)arg, &d, sizeof(d)))
			ret = -EFAULT;
		break;
	case ORACLE_PIN:
		if (copy_from_user(&p, (void __user *)arg, sizeof(p))) {
			ret = -EFAULT;
			break;
		}
		ret = pin_op(&p);
		if (!ret && copy_to_user((void __user *)arg, &p, sizeof(p)))
			ret = -EFAULT;
		break;
	case ORACLE_UNPIN:
		unpin_user_pages(pins, npins);
		p.start = 0;
		p.pages = npins;
		p.pfn = 0;
		npins = 0;
		if (copy_to_user((void __user *)arg, &p, sizeof(p)))
			ret = -EFAULT;
		break;
	case ORACLE_NR_FREE: {
		u32 n = 0;
		int z;

		for (z = 0; z < MAX_NR_ZONES; z++)
			if (populated_zone(&NODE_DATA(0)->node_zones[z]))
				n += zone_page_state_snapshot(&NODE_DATA(0)->node_zones[z], NR_FREE_PAGES);
		if (copy_to_user((void __user *)arg, &n, sizeof(n)))
			ret = -EFAULT;
		break;
	}
	case ORACLE_CMASTAT: {
		struct oracle_cmastat c;

		if (copy_from_user(&c, (void __user *)arg, sizeof(c))) {
			ret = -EFAULT;
			break;
		}
		ret = cmastat_op(&c);
		if (!ret && copy_to_user((void __user *)arg, &c, sizeof(c)))
			ret = -EFAULT;
		break;
	}
	default:
		ret = -ENOTTY;
	}
	mutex_unlock(&lock);
	return ret;
}

static const struct file_operations oracle_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = oracle_ioctl,
};

static struct miscdevice oracle_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cmaemu_oracle",
	.fops = &oracle_fops,
};

/* The seed article's cma_test, with its addresses printed as numbers. */
#define CMA_NUM 10
static struct device *cma_dev;
static dma_addr_t dma_phys[CMA_NUM];
static void *dma_virt[CMA_NUM];

static ssize_t cma_test_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	int i;

	for (i = 0; i < CMA_NUM; i++) {
		if (dma_virt[i]) {
			dma_free_coherent(cma_dev, (i + 1) * SZ_1M, dma_virt[i], dma_phys[i]);
			_dev_info(cma_dev, "free virt: %#010lx phys: %#010llx\n",
				  (unsigned long)dma_virt[i], (unsigned long long)dma_phys[i]);
			dma_virt[i] = NULL;
			break;
		}
	}
	return 0;
}

static ssize_t cma_test_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	int i;

	for (i = 0; i < CMA_NUM; i++) {
		if (!dma_virt[i]) {
			dma_virt[i] = dma_alloc_coherent(cma_dev, (i + 1) * SZ_1M, &dma_phys[i], GFP_KERNEL);
			if (dma_virt[i]) {
				void *p;

				for (p = dma_virt[i]; p < dma_virt[i] + (i + 1) * SZ_1M; p += PAGE_SIZE)
					*(u32 *)p = 0;
				_dev_info(cma_dev, "alloc virt: %#010lx phys: %#010llx\n",
					  (unsigned long)dma_virt[i], (unsigned long long)dma_phys[i]);
			} else {
				dev_err(cma_dev, "no mem in CMA area\n");
			}
			break;
		}
	}
	return count;
}

static const struct file_operations cma_test_fops = {
	.owner = THIS_MODULE,
	.read = cma_test_read,
	.write = cma_test_write,
};

static struct miscdevice cma_test_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cma_test",
	.fops = &cma_test_fops,
};

static int dma_test_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct device_node *np;
	struct reserved_mem *rmem;
	const char *name = dev->of_node->name;
	int ret;

	if (ndevs == MAX_DEVS)
		return -ENOSPC;
	np = of_parse_phandle(dev->of_node, "memory-region", 0);
	if (np) {
		rmem = of_reserved_mem_lookup(np);
		if (rmem)
			name = rmem->name;
		of_node_put(np);
		ret = of_reserved_mem_device_init(dev);
		if (ret)
			dev_warn(dev, "memory-region: %d\n", ret);
	}
	ret = dma_coerce_mask_and_coherent(dev, DMA_BIT_MASK(32));
	if (ret)
		return ret;
	devs[ndevs].dev = dev;
	strscpy(devs[ndevs].area, name, ORACLE_NAME_LEN);
	ndevs++;
	return 0;
}

static const struct of_device_id dma_test_of_match[] = {
	{ .compatible = "cmaemu,dma-test" },
	{}
};
/* no MODULE_DEVICE_TABLE: Debian's amd64 modpost has 64-bit struct sizes (we insmod by hand) */

static struct platform_driver dma_test_driver = {
	.probe = dma_test_probe,
	.driver = {
		.name = "cmaemu-dma-test",
		.of_match_table = dma_test_of_match,
	},
};

static int __init oracle_init(void)
{
	int ret = platform_driver_register(&dma_test_driver);

	if (ret)
		return ret;
	ret = misc_register(&oracle_misc);
	if (ret)
		goto out_drv;
	ret = misc_register(&cma_test_misc);
	if (ret)
		goto out_misc;
	cma_dev = cma_test_misc.this_device;
	cma_dev->coherent_dma_mask = ~0;
	_dev_info(cma_dev, "registered.\n");
	return 0;
out_misc:
	misc_deregister(&oracle_misc);
out_drv:
	platform_driver_unregister(&dma_test_driver);
	return ret;
}
module_init(oracle_init);

static void __exit oracle_exit(void)
{
	misc_deregister(&cma_test_misc);
	misc_deregister(&oracle_misc);
	platform_driver_unregister(&dma_test_driver);
}
module_exit(oracle_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cmaemu differential oracle: CMA/DMA, pin and cma_test operations for a test program");
