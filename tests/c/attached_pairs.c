// Attached-cost helper for docs/probe.md "Cost (measured)": argv = SEMAPHORE_OFFSET (the
// .memkind_probe section address from readelf -S, 0 = leave detached) N KIND (DEFAULT|REGULAR);
// forces the probe semaphore on, then runs N memkind_malloc(kind, 64)/memkind_free pairs.
// Count with valgrind --tool=callgrind: per pair = (Ir(N) - Ir(0)) / N.
#define _GNU_SOURCE
#include <memkind.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
int main(int argc, char **argv) {
    unsigned long off = strtoul(argv[1], 0, 0);
    long n = atol(argv[2]);
    memkind_t kind = strcmp(argv[3], "REGULAR") == 0 ? MEMKIND_REGULAR : MEMKIND_DEFAULT;
    Dl_info di; dladdr((void *)memkind_malloc, &di);
    if (off) *(volatile uint16_t *)((char *)di.dli_fbase + off) = 1;
    for (int i = 0; i < 10000; i++) { char *p = memkind_malloc(kind, 64); p[0] = 1; memkind_free(kind, p); }
    for (long i = 0; i < n; i++) { char *p = memkind_malloc(kind, 64); p[0] = 1; memkind_free(kind, p); }
    return 0;
}
