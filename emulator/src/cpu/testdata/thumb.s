@ Thumb programs for the CPU glue tests (emulator/src/cpu/tests.rs), placed
@ at flash 0x1000. Regenerate the byte arrays there with:
@   llvm-mc -triple=thumbv7a-none-eabi -filetype=obj thumb.s -o t.o && llvm-objcopy -O binary t.o t.bin
.syntax unified
.thumb
.org 0x0
t_undef:
  wfe
  yield
  sev
  movs r0, #1
  udf #1
.org 0x40
t_undef32:
  movs r0, #1
  udf.w #1
.org 0x80
t_irq:
  ldr r12, =0x10000000
  movs r0, #1
  str r0, [r12, #12]
  ldr r1, =1000
1: subs r1, #1
  bne 1b
  cpsie i
  b 2f
2: cpsid i
  ldr r1, =3000
3: subs r1, #1
  bne 3b
  str r0, [r12, #4]
  b .
.ltorg
.org 0x100
t_loop:
  ldr r12, =0x10000000
  movs r0, #0
  ldr r1, =1000
1: adds r0, r0, r1
  subs r1, #1
  bne 1b
  str r0, [r12]
  str r0, [r12, #4]
  b .
.ltorg
.org 0x140
t_pabt:
  ldr r0, =0x60fffff9
  bx r0
.ltorg
.org 0x160
t_it:
  ldr r12, =0x10000000
  ldr r2, =0x60001000
  movs r3, #0
  movs r1, #7
  movs r0, #0
  it eq
  streq r1, [r2]
  movs r0, #1
  b 1f
1: movs r3, #42
  str r3, [r12]
  str r3, [r12, #4]
  b .
.ltorg
.org 0x1c0
ram_code:
  nop
  nop
  nop
  bl .+0x1000
.org 0x200
t_dabt:
  ldr r12, =0x10000000
  ldr r2, =0x50000000
  movs r5, #0
  movs r1, #1
  str r1, [r2]
  movs r5, #7
  b .
.ltorg
.org 0x240
t_fast_stores:
  ldr r12, =0x10000000
  ldr r2, =0x60002000
  ldr r1, =1000
1: str r1, [r2]
  subs r1, #1
  bne 1b
  str r1, [r12, #4]
  b .
.ltorg
.org 0x280
t_smc:
  ldr r12, =0x10000000
  ldr r2, =0x60003000
  ldr r3, =0x2001
  ldr r4, =0x4770
  strh r3, [r2]
  strh r4, [r2, #2]
  ldr r5, =0x60003001
  blx r5
  str r0, [r12]
  ldr r3, =0x2002
  strh r3, [r2]
  blx r5
  str r0, [r12]
  str r0, [r12, #4]
  b .
.ltorg
.org 0x300
@ Touch 400 pages (the TLB grows at the next flush: use > 70 %), flush,
@ log (the host may sleep there), touch 10 pages, flush (the TLB shrinks
@ only if its resize window has expired), then touch the 400 pages twice:
@ the second pass misses again only if the TLB shrank.
t_tlb_resize:
  ldr r12, =0x10000000
  ldr r6, =0x60100000
  movs r7, #0
  mov r2, r6
  ldr r1, =400
1: ldr r0, [r2]
  add r2, r2, #4096
  subs r1, #1
  bne 1b
  mcr p15, 0, r7, c8, c7, 0
  str r7, [r12]
  mov r2, r6
  movs r1, #10
2: ldr r0, [r2]
  add r2, r2, #4096
  subs r1, #1
  bne 2b
  mcr p15, 0, r7, c8, c7, 0
  movs r3, #2
3: mov r2, r6
  ldr r1, =400
4: ldr r0, [r2]
  add r2, r2, #4096
  subs r1, #1
  bne 4b
  subs r3, #1
  bne 3b
  str r7, [r12, #4]
  b .
.ltorg
.org 0x380
@ The dirty log (CMAEMU-PATCHES.md 10), with 0x60004000 watched: each log
@ write makes the host take the marks at the next block start (the
@ branches end the blocks). Take 1: the watch's initial mark; take 2: the
@ first store to the page (a fresh TLB entry); take 3: a store through the
@ same entry, logged only because take 2 re-armed it; take 4: nothing.
t_dirty:
  ldr r12, =0x10000000
  ldr r2, =0x60004000
  ldr r3, =0x60005000
  movs r1, #1
  str r1, [r12]
  b 1f
1: str r1, [r2]
  str r1, [r3]
  str r1, [r12]
  b 2f
2: movs r1, #2
  str r1, [r2, #4]
  str r1, [r12]
  b 3f
3: str r1, [r12]
  b 4f
4: str r1, [r12, #4]
  b .
.ltorg
.org 0x400
@ Copy-on-write of one page (CMAEMU-PATCHES.md 11), with the MMU on: the
@ host's tables (at 0x60010000) map every MiB to itself and VA 0x70023000
@ to RAM page 0x60006000 as well. Log 1: the host keeps another page (the
@ engine learns the record). Stores through both VAs of page 0x60006000
@ mark their TLB entries dirty; log 2: the host keeps that page; a store
@ through the alias's dirty entry (it must copy the page first); log 3:
@ the host reads what was kept; a store through the identity's entry (no
@ copy left); log 4.
t_cow:
  ldr r0, =0x60010000
  mcr p15, 0, r0, c2, c0, 0
  movs r0, #0
  mcr p15, 0, r0, c2, c0, 2
  movs r0, #3
  mcr p15, 0, r0, c3, c0, 0
  mrc p15, 0, r0, c1, c0, 0
  orr r0, r0, #1
  mcr p15, 0, r0, c1, c0, 0
  isb
  ldr r12, =0x10000000
  ldr r2, =0x60006000
  ldr r3, =0x70023000
  movs r1, #1
  str r1, [r12]
  b 1f
1: str r1, [r2]
  str r1, [r3, #4]
  str r1, [r12]
  b 2f
2: movs r1, #2
  str r1, [r3]
  str r1, [r12]
  b 3f
3: movs r1, #3
  str r1, [r2, #8]
  str r1, [r12]
  b 4f
4: str r1, [r12, #4]
  b .
.ltorg
.org 0x480
@ 100 times `cpsid i; cpsie i` (CMAEMU-PATCHES.md 13): each ends its
@ block, and the next block is chained to it, reached neither from the
@ engine's main loop nor through the jump lookup.
t_cps:
  ldr r12, =0x10000000
  movs r1, #100
1: cpsid i
  cpsie i
  subs r1, #1
  bne 1b
  str r1, [r12, #4]
  b .
.ltorg
