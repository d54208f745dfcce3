/* A steady workload for `memkind-probe top`: for SECONDS seconds, rounds of 1000 MEMKIND_DEFAULT
 * mallocs of 64 bytes and 500 MEMKIND_REGULAR mallocs of 256 bytes, each replacing (freeing)
 * the oldest live block of its kind, so allocs/s : frees/s are steady, DEFAULT allocates twice
 * as often as REGULAR, and live bytes stay at 4096 x 64 (DEFAULT) and 2048 x 256 (REGULAR).
 * A short sleep between rounds keeps the rate moderate (PAUSE_US, default 1000 µs; 0 spins).
 * With HOLD_MIB > 0 it also keeps that many MiB of touched MEMKIND_DEFAULT memory (1 MiB blocks).
 *
 *   top_workload SECONDS [PAUSE_US [HOLD_MIB]]
 * Prints nothing: it runs under the TUI, on the same terminal. Exits 0 when done. */
#include <memkind.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NDEF 4096
#define NREG 2048

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 5;
    long pause_us = argc > 2 ? atol(argv[2]) : 1000;
    long hold_mib = argc > 3 ? atol(argv[3]) : 0;
    static void *def[NDEF], *reg[NREG];
    void **hold = NULL;
    if (hold_mib > 0) {
        hold = calloc(hold_mib, sizeof *hold);
        for (long i = 0; i < hold_mib; i++) {
            hold[i] = memkind_malloc(MEMKIND_DEFAULT, 1 << 20);
            if (!hold[i])
                return 2;
            memset(hold[i], 1, 1 << 20);
        }
    }
    double end = now() + secs;
    unsigned long d = 0, r = 0;
    while (now() < end) {
        for (int i = 0; i < 1000; i++) {
            memkind_free(MEMKIND_DEFAULT, def[d % NDEF]);
            if (!(def[d++ % NDEF] = memkind_malloc(MEMKIND_DEFAULT, 64)))
                return 3;
            if (i & 1) {
                memkind_free(MEMKIND_REGULAR, reg[r % NREG]);
                if (!(reg[r++ % NREG] = memkind_malloc(MEMKIND_REGULAR, 256)))
                    return 4;
            }
        }
        if (pause_us > 0)
            usleep(pause_us);
    }
    for (int i = 0; i < NDEF; i++)
        memkind_free(MEMKIND_DEFAULT, def[i]);
    for (int i = 0; i < NREG; i++)
        memkind_free(MEMKIND_REGULAR, reg[i]);
    for (long i = 0; i < hold_mib; i++)
        memkind_free(MEMKIND_DEFAULT, hold[i]);
    free(hold);
    return 0;
}
