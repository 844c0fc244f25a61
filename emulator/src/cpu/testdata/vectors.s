@ ARM vector table for the CPU glue tests (at flash 0): the undefined and
@ prefetch-abort handlers report LR, SPSR (IFAR) to the test bus and stop;
@ the data-abort handler reports LR, DFAR and r5 and stops;
@ the IRQ handler reports LR (which drops the line) and returns.
@   llvm-mc -triple=armv7a-none-eabi -filetype=obj vectors.s -o v.o && llvm-objcopy -O binary v.o v.bin
.syntax unified
.arm
vectors:
  b reset
  b und
  b svc
  b pabt
  b dabt
  nop
  b irq
  nop
reset: b .
svc: b .
und:
  ldr r12, =0x10000000
  str lr, [r12]
  mrs r11, spsr
  str r11, [r12]
  str r11, [r12, #4]
  b .
pabt:
  ldr r12, =0x10000000
  str lr, [r12]
  mrc p15, 0, r11, c6, c0, 2
  str r11, [r12]
  str r11, [r12, #4]
  b .
dabt:
  ldr r12, =0x10000000
  str lr, [r12]
  mrc p15, 0, r11, c6, c0, 0
  str r11, [r12]
  str r5, [r12]
  str r11, [r12, #4]
  b .
irq:
  ldr r12, =0x10000000
  str lr, [r12, #8]
  subs pc, lr, #4
.ltorg
