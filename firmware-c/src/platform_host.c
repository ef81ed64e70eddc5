/* The platform on the build machine: stdio. */
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_FILES 4
static FILE *files[MAX_FILES];

void plat_puts(const char *s) { fputs(s, stdout); }

int plat_open(const char *name) {
    for (int i = 0; i < MAX_FILES; i++) {
        if (files[i] == NULL) {
            files[i] = fopen(name, "rb");
            return files[i] != NULL ? i : -1;
        }
    }
    return -1;
}

long plat_length(int h) {
    FILE *f = files[h];
    long at = ftell(f);
    if (at < 0 || fseek(f, 0, SEEK_END) != 0) return -1;
    long n = ftell(f);
    if (fseek(f, at, SEEK_SET) != 0) return -1;
    return n;
}

long plat_read(int h, void *buf, size_t n) {
    size_t got = fread(buf, 1, n, files[h]);
    return ferror(files[h]) ? -1 : (long)got;
}

void plat_close(int h) {
    fclose(files[h]);
    files[h] = NULL;
}

void plat_exit(int failed) {
    fflush(stdout);
    exit(failed ? 1 : 0);
}

uint32_t plat_ticks(void) { return 0; }
uint32_t plat_ticks_between(uint32_t a, uint32_t b) { return b - a; }
void plat_stack_paint(void) {}
uint32_t plat_stack_high_water(void) { return 0; }
