/* Cortex-M4F start-up for mps2-an386 (QEMU) and parts like it: the vector table, then
 * .data/.bss set-up, the FPU enabled, main(). Nothing of avm is here. */
#include <stdint.h>

#include "platform.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void) {
    /* Full access to CP10/CP11 (the FPU) before any floating-point instruction. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
    for (uint32_t *d = &_sbss; d < &_ebss;) *d++ = 0;
    plat_exit(main() != 0);
}

/* A fault (for avm: its panic path, which executes `udf`) reports and stops with status 1. */
void Fault_Handler(void) {
    plat_puts("avm-c-firmware: fault (HardFault/UsageFault): stopping\n");
    plat_exit(1);
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler,
    Fault_Handler,
};
