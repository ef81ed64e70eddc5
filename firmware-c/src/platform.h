/* What the example needs from the board: text out, host files in, exit, a tick counter.
 * platform_qemu.c implements it with Arm semihosting (QEMU mps2-an386, or a debug probe);
 * platform_host.c with stdio, so the same main.c also runs on the build machine. */
#ifndef AVM_EXAMPLE_PLATFORM_H
#define AVM_EXAMPLE_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Writes a NUL-terminated string to the console. */
void plat_puts(const char *s);

/* Opens a host file for binary reading: a handle >= 0, or -1 when there is no such file. */
int plat_open(const char *name);
/* The open file's length in bytes, or -1. */
long plat_length(int handle);
/* Reads up to n bytes; returns the bytes read (0 at the end), or -1 on an error. */
long plat_read(int handle, void *buf, size_t n);
void plat_close(int handle);

/* Ends the program with status 0 (success) or 1 (failure). */
void plat_exit(int failed) __attribute__((noreturn));

/* A free-running tick counter for cost measurement (SysTick on the board: 40 instructions per
 * tick under `qemu -icount shift=0`; 0 on the host). */
uint32_t plat_ticks(void);
/* Ticks from `a` to `b` (the counter may count down and wrap). */
uint32_t plat_ticks_between(uint32_t a, uint32_t b);

/* Paints the free stack at start; returns the deepest stack use at the end (bytes; 0 on the host). */
void plat_stack_paint(void);
uint32_t plat_stack_high_water(void);

#endif
