// SPDX-License-Identifier: GPL-2.0
/*
 * cmaemu's differential oracle, the user half: a shell on the real kernel
 * that speaks the cmaemu guest shell's commands and prints what it prints,
 * so that one scenario drives both (see oracle/README.md).
 *
 *   fill MiB [seed]   anonymous pages at the guest's VAs (0x00400000 up),
 *                     written with the guest's pattern
 *   fill leave MiB [seed]  the same, page by page until at most MiB are
 *                     free (NR_FREE_PAGES, exact, from the module)
 *   check             verify every page
 *   free MiB          unmap from the top
 *   pin N | unpin     pin_user_pages of the first N pages (module ioctl)
 *   pfns              the user pages' pfns (/proc/self/pagemap)
 *   dma alloc AREA N  dma_alloc_coherent of N pages through the device
 *   dma free AREA     whose memory-region is AREA; free: the oldest one
 *   cat FILE | echo TEXT > FILE | dmesg | poweroff
 *
 * Static, for armhf: arm-linux-gnueabihf-gcc -static -O2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <unistd.h>
#include "../module/cmaemu_oracle.h"

#define USER_BASE 0x00400000u
#define USER_END 0x80000000u

static uint32_t nr_pages, seed, pinned;
static int ctl = -1;

/* The guest's vm::pattern. */
static uint32_t pattern(uint32_t s, uint32_t va)
{
	uint32_t x = va ^ (s * 0x9e3779b9u);
	x *= 0x85ebca6bu;
	return x ^ (x >> 13);
}

static uint32_t page_va(uint32_t i)
{
	return USER_BASE + i * 4096;
}

static int ctl_fd(void)
{
	if (ctl < 0)
		ctl = open("/dev/cmaemu_oracle", O_RDWR);
	return ctl;
}

static uint32_t pfn_of(uint32_t va)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (off_t)(va / 4096) * 8) != 8)
		e = 0;
	close(fd);
	return (e >> 63) ? (uint32_t)(e & ((1ull << 55) - 1)) : 0;
}

/* NR_FREE_PAGES of every zone, exact (the module); ~0u when unknown */
static uint32_t nr_free(void)
{
	uint32_t n = ~0u;

	if (ctl_fd() < 0 || ioctl(ctl, ORACLE_NR_FREE, &n) < 0)
		return ~0u;
	return n;
}

/* fill MiB [seed] | fill leave MiB [seed]: the latter page by page until
 * at most MiB are free (read before each page, as the guest does) */
static void fill(uint32_t mib, int leave, int has_seed, uint32_t s)
{
	uint32_t want = leave ? ~0u : mib * 256, done = 0;

	if (has_seed && nr_pages == 0)
		seed = s;
	if (leave && nr_free() == ~0u) {
		printf("fill: cannot read the free pages (%s)\n", strerror(errno));
		return;
	}
	while (done < want) {
		uint32_t va = page_va(nr_pages), *p;
		uint32_t w;

		if (leave && nr_free() <= mib * 256)
			break;

		if (va >= USER_END - 4096) {
			printf("fill: address space full\n");
			break;
		}
		p = mmap((void *)(uintptr_t)va, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED) {
			printf("fill: out of memory after %u pages (%s)\n", done, strerror(errno));
			break;
		}
		for (w = 0; w < 1024; w++)
			p[w] = pattern(seed, va + w * 4);
		nr_pages++;
		done++;
	}
	printf("fill: %u pages mapped at %#010x-%#010x\n", nr_pages, USER_BASE, page_va(nr_pages));
}

static void check(void)
{
	uint32_t i, w, bad = 0;

	for (i = nr_pages; i-- > 0;) {
		const uint32_t *p = (const uint32_t *)(uintptr_t)page_va(i);

		for (w = 0; w < 1024; w++) {
			if (p[w] != pattern(seed, page_va(i) + w * 4)) {
				if (bad < 16)
					printf("check: page at va %#010x (pfn %#x) differs at offset %#x: %#010x != %#010x\n",
					       page_va(i), pfn_of(page_va(i)), w * 4, p[w], pattern(seed, page_va(i) + w * 4));
				bad++;
				break;
			}
		}
	}
	if (!bad)
		printf("check: %u pages ok\n", nr_pages);
	else
		printf("check: %u of %u pages bad\n", bad, nr_pages);
}

static void free_mib(uint32_t mib)
{
	uint32_t n = mib * 256;

	if (n > nr_pages)
		n = nr_pages;
	while (n > 0) {
		if (nr_pages <= pinned) {
			printf("free: remaining pages are pinned\n");
			break;
		}
		munmap((void *)(uintptr_t)page_va(nr_pages - 1), 4096);
		nr_pages--;
		n--;
	}
	printf("free: %u pages left\n", nr_pages);
}

static void pin(uint32_t n)
{
	struct oracle_pin p = { .start = page_va(pinned), .pages = n };

	if (n > nr_pages - pinned)
		p.pages = nr_pages - pinned;
	if (ctl_fd() < 0 || ioctl(ctl, ORACLE_PIN, &p) < 0) {
		printf("pin: %s\n", strerror(errno));
		return;
	}
	pinned += p.pages;
	if (pinned)
		printf("pin: %u pages pinned (first at va %#010x, pfn %#x)\n", pinned, USER_BASE, pfn_of(USER_BASE));
	else
		printf("pin: 0 pages pinned (no mapped page)\n");
}

static void unpin(void)
{
	struct oracle_pin p = { 0 };

	if (ctl_fd() < 0 || ioctl(ctl, ORACLE_UNPIN, &p) < 0)
		printf("unpin: %s\n", strerror(errno));
	pinned = 0;
	printf("unpin: done\n");
}

static void pfns(void)
{
	uint32_t i;

	for (i = 0; i < nr_pages; i++)
		printf("%#010x %#x\n", page_va(i), pfn_of(page_va(i)));
}

static void dma(char *op, char *area, char *count)
{
	struct oracle_dma d = { 0 };

	if (!op || !area || (strcmp(op, "alloc") && strcmp(op, "free")) || (!strcmp(op, "alloc") && !count)) {
		printf("usage: dma alloc AREA PAGES | dma free AREA\n");
		return;
	}
	strncpy(d.area, area, sizeof(d.area) - 1);
	d.pages = count ? strtoul(count, NULL, 0) : 0;
	if (ctl_fd() < 0 || ioctl(ctl, strcmp(op, "alloc") ? ORACLE_DMA_FREE : ORACLE_DMA_ALLOC, &d) < 0) {
		printf("dma: %s: no device with memory-region %s (%s)\n", op, area, strerror(errno));
		return;
	}
	if (!strcmp(op, "alloc")) {
		if (d.pfn)
			printf("dma: %s: %u pages at pfn %#x\n", area, d.pages, d.pfn);
		else
			printf("dma: %s: allocation of %u pages failed\n", area, d.pages);
	} else if (d.pages) {
		printf("dma: %s: freed %u pages at pfn %#x\n", area, d.pages, d.pfn);
	} else {
		printf("dma: %s: nothing to free\n", area);
	}
}

/*
 * cmastat: per zone with CMA pages, the free CMA pages as meminfo's
 * CmaFree counts them (vm_stat), with this CPU's unfolded vm_stat_diff
 * (the exact count), and the CMA pages on the per-CPU free lists.
 */
static void cmastat(void)
{
	struct oracle_cmastat c = { 0 };

	if (ctl_fd() < 0) {
		printf("cmastat: %s\n", strerror(errno));
		return;
	}
	for (c.zone = 0;; c.zone++) {
		if (ioctl(ctl, ORACLE_CMASTAT, &c) < 0) {
			printf("cmastat: %s\n", strerror(errno));
			return;
		}
		if (!c.name[0])
			break;
		if (c.cma_pages)
			printf("cmastat: %s: %u kB free, %u kB counted, %u kB on per-CPU lists (%u pages listed, batch %u, stat_threshold %u)\n",
			       c.name, c.snapshot * 4, c.counted * 4, c.pcp * 4, c.pcp_count, c.batch, c.threshold);
	}
}

static void cat(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		printf("cat: %s: %s\n", path, strerror(errno));
		return;
	}
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	close(fd);
}

static void echo(char *line)
{
	char *gt = strchr(line, '>'), *text = line + 4, *path;
	int fd;

	if (!gt) {
		printf("%s\n", text);
		return;
	}
	*gt = 0;
	path = gt + 1;
	while (*path == ' ')
		path++;
	while (gt > text && gt[-1] == ' ')
		*--gt = 0;
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		printf("echo: %s: %s\n", path, strerror(errno));
		return;
	}
	fflush(stdout);
	if (write(fd, text, strlen(text)) < 0)
		printf("echo: %s: %s\n", path, strerror(errno));
	close(fd);
}

int main(void)
{
	char line[512];

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		char *cmd, *a, *b, *c, copy[512];

		printf("oracle# ");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			break;
		line[strcspn(line, "\r\n")] = 0;
		strcpy(copy, line);
		cmd = strtok(line, " ");
		if (!cmd)
			continue;
		a = strtok(NULL, " ");
		b = strtok(NULL, " ");
		c = strtok(NULL, " ");
		if (!strcmp(cmd, "fill") && a && !strcmp(a, "leave") && b)
			fill(strtoul(b, NULL, 0), 1, c != NULL, c ? strtoul(c, NULL, 0) : 0);
		else if (!strcmp(cmd, "fill") && a)
			fill(strtoul(a, NULL, 0), 0, b != NULL, b ? strtoul(b, NULL, 0) : 0);
		else if (!strcmp(cmd, "check"))
			check();
		else if (!strcmp(cmd, "free") && a)
			free_mib(strtoul(a, NULL, 0));
		else if (!strcmp(cmd, "pin") && a)
			pin(strtoul(a, NULL, 0));
		else if (!strcmp(cmd, "unpin"))
			unpin();
		else if (!strcmp(cmd, "pfns"))
			pfns();
		else if (!strcmp(cmd, "dma"))
			dma(a, b, c);
		else if (!strcmp(cmd, "cat") && a)
			cat(a);
		else if (!strcmp(cmd, "echo"))
			echo(copy);
		else if (!strcmp(cmd, "cmastat"))
			cmastat();
		else if (!strcmp(cmd, "dmesg"))
			system("dmesg");
		else if (!strcmp(cmd, "poweroff")) {
			sync();
			reboot(RB_POWER_OFF);
		} else
			printf("%s: unknown command\n", cmd);
	}
	return 0;
}
