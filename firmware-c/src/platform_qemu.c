/* The platform on a Cortex-M4F: Arm semihosting for text and host files (served by QEMU or a
 * debug probe), SysTick as the tick counter, and a painted stack for the high-water mark. */
#include "platform.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT = 0x18,
};
/* SYS_EXIT reasons: ADP_Stopped_ApplicationExit (status 0), ADP_Stopped_RunTimeErrorUnknown (1). */
#define ADP_EXIT_OK 0x20026u
#define ADP_EXIT_ERROR 0x20023u

static uintptr_t semihost(uintptr_t op, const void *arg) {
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The host's stdout: the special file ":tt" opened for writing (mode 4, "w"); SYS_WRITE0 would
 * go to QEMU's stderr. */
static int console = -1;

void plat_puts(const char *s) {
    if (console < 0) {
        uintptr_t args[3] = {(uintptr_t)":tt", 4, 3};
        console = (int)(intptr_t)semihost(SYS_OPEN, args);
    }
    uintptr_t args[3] = {(uintptr_t)console, (uintptr_t)s, strlen(s)};
    semihost(SYS_WRITE, args);
}

int plat_open(const char *name) {
    uintptr_t args[3] = {(uintptr_t)name, 1 /* "rb" */, strlen(name)};
    intptr_t h = (intptr_t)semihost(SYS_OPEN, args);
    return h < 0 ? -1 : (int)h;
}

long plat_length(int h) {
    uintptr_t args[1] = {(uintptr_t)h};
    return (long)(intptr_t)semihost(SYS_FLEN, args);
}

long plat_read(int h, void *buf, size_t n) {
    uintptr_t args[3] = {(uintptr_t)h, (uintptr_t)buf, n};
    uintptr_t not_read = semihost(SYS_READ, args);
    return not_read > n ? -1 : (long)(n - not_read);
}

void plat_close(int h) {
    uintptr_t args[1] = {(uintptr_t)h};
    semihost(SYS_CLOSE, args);
}

void plat_exit(int failed) {
    semihost(SYS_EXIT, (const void *)(uintptr_t)(failed ? ADP_EXIT_ERROR : ADP_EXIT_OK));
    for (;;) {
    }
}

/* SysTick: 24-bit down-counter at the core clock (25 MHz on mps2-an386 as QEMU models it). */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

uint32_t plat_ticks(void) {
    if ((SYST_CSR & 1u) == 0) {
        SYST_RVR = 0x00FFFFFFu;
        SYST_CVR = 0;
        SYST_CSR = 0x5u; /* enable, core clock, no interrupt */
    }
    return SYST_CVR;
}

uint32_t plat_ticks_between(uint32_t a, uint32_t b) { return (a - b) & 0x00FFFFFFu; }

#define PAINT 0xC0FFEE55u
extern uint32_t _ebss, _estack;

void plat_stack_paint(void) {
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &_ebss; (uintptr_t)p < sp - 256; p++) *(volatile uint32_t *)p = PAINT;
}

uint32_t plat_stack_high_water(void) {
    uint32_t *p = &_ebss;
    while (p < &_estack && *(volatile uint32_t *)p == PAINT) p++;
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}
