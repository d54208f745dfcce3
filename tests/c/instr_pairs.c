/* The workload of `memkind-bench --instructions` (tests/src/bin/memkind-bench/instructions.rs),
 * run under `valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no`. Built against
 * memkind's header (memkind.h) and linked with -lmemkind; which libmemkind.so.0 it runs against
 * is chosen with LD_LIBRARY_PATH (memkind 1.14 or ours), jemalloc's own malloc/free with
 * LD_PRELOAD=libjemalloc.so.2.
 *
 *   instr_pairs N WARMUP CELL...
 *
 * CELL is KIND:SIZE. KIND is a static kind's name without MEMKIND_ (the variable MEMKIND_<KIND>
 * looked up in the loaded libmemkind), PMEM (memkind_create_pmem($INSTR_PMEM_DIR or /tmp, 0)),
 * FIXED (memkind_create_fixed over a 64 MiB mmap), "malloc" (malloc/free) or "mallocx"
 * (mallocx(size, 0) / dallocx(p, 0) of a preloaded jemalloc, found with dlsym).
 *
 * Per cell: WARMUP pairs (the kind's arena and thread cache set up, not counted), then the same
 * loop twice with collection on, n = 0 and n = N, each followed by CALLGRIND_DUMP_STATS_AT("CELL
 * n=...") (which zeroes the counters): instructions per pair = (count(N) - count(0)) / N. A pair is
 * `p = memkind_malloc(kind, size); p[0] = 1; memkind_free(kind, p)` with the caller's side: the
 * loop's counter, compare and branch, argument moves, the store, two calls and their PLT jumps
 * (12 instructions at -O2; 10 for malloc/free, which pass no kind). Prints one line per cell,
 * "cell CELL ok" or "cell CELL unavail REASON", and first "lib PATH" (the libmemkind.so.0 really
 * loaded) and "valgrind 0|1". Exit 0 unless the arguments are bad.
 *
 * INSTR_PROBE_SEMAPHORE=0xVMA (our library only): store 1 in the u16 at that address of the
 * loaded libmemkind (the last u16 of the `.memkind_probe` section, `readelf -S`), as the kernel does
 * while `memkind-probe stat` is attached, so the pairs take the counted path. Nothing reads the
 * flushes (no uprobe), so the count leaves out the uprobe hit every MKP_FLUSH_EVERY events.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <memkind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <valgrind/callgrind.h>

#define FIXED_BYTES (64UL << 20)

typedef void *(*mallocx_fn)(size_t, int);
typedef void (*dallocx_fn)(void *, int);

/* noinline: the loops are the only code between the toggles, the same in both runs of a cell. */
static __attribute__((noinline)) void loop_memkind(memkind_t kind, size_t size, long n) {
    for (long i = 0; i < n; i++) {
        char *p = memkind_malloc(kind, size);
        p[0] = 1;
        memkind_free(kind, p);
    }
}

/* Compiled with -fno-builtin: gcc would otherwise delete the malloc/free pair. */
static __attribute__((noinline)) void loop_malloc(size_t size, long n) {
    for (long i = 0; i < n; i++) {
        char *p = malloc(size);
        p[0] = 1;
        free(p);
    }
}

static __attribute__((noinline)) void loop_mallocx(mallocx_fn mx, dallocx_fn dx, size_t size,
                                                    long n) {
    for (long i = 0; i < n; i++) {
        char *p = mx(size, 0);
        p[0] = 1;
        dx(p, 0);
    }
}

enum what { MEMKIND, MALLOC, MALLOCX };

struct cell {
    enum what what;
    memkind_t kind;
    mallocx_fn mx;
    dallocx_fn dx;
    size_t size;
};

static void run(const struct cell *c, long n) {
    switch (c->what) {
    case MEMKIND:
        loop_memkind(c->kind, c->size, n);
        break;
    case MALLOC:
        loop_malloc(c->size, n);
        break;
    case MALLOCX:
        loop_mallocx(c->mx, c->dx, c->size, n);
        break;
    }
}

/* One allocation, checked: NULL means the kind cannot serve this size here. */
static int probe(const struct cell *c) {
    char *p;
    switch (c->what) {
    case MEMKIND:
        p = memkind_malloc(c->kind, c->size);
        if (!p)
            return -1;
        p[0] = 1;
        memkind_free(c->kind, p);
        return 0;
    case MALLOC:
        p = malloc(c->size);
        if (!p)
            return -1;
        free(p);
        return 0;
    case MALLOCX:
        p = c->mx(c->size, 0);
        if (!p)
            return -1;
        c->dx(p, 0);
        return 0;
    }
    return -1;
}

static memkind_t pmem_kind, fixed_kind;
static void *fixed_buf;

/* The kind named `name`, or NULL with *why set. */
static memkind_t kind_named(const char *name, char *why, size_t why_len) {
    int rc;
    if (!strcmp(name, "PMEM")) {
        if (!pmem_kind) {
            const char *dir = getenv("INSTR_PMEM_DIR");
            rc = memkind_create_pmem(dir ? dir : "/tmp", 0, &pmem_kind);
            if (rc) {
                char msg[MEMKIND_ERROR_MESSAGE_SIZE];
                memkind_error_message(rc, msg, sizeof msg);
                snprintf(why, why_len, "create_pmem(%s) %d: %s", dir ? dir : "/tmp", rc, msg);
                pmem_kind = NULL;
                return NULL;
            }
        }
        return pmem_kind;
    }
    if (!strcmp(name, "FIXED")) {
        if (!fixed_kind) {
            fixed_buf = mmap(NULL, FIXED_BYTES, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (fixed_buf == MAP_FAILED) {
                snprintf(why, why_len, "mmap of %lu bytes failed", FIXED_BYTES);
                return NULL;
            }
            rc = memkind_create_fixed(fixed_buf, FIXED_BYTES, &fixed_kind);
            if (rc) {
                char msg[MEMKIND_ERROR_MESSAGE_SIZE];
                memkind_error_message(rc, msg, sizeof msg);
                snprintf(why, why_len, "create_fixed %d: %s", rc, msg);
                fixed_kind = NULL;
                return NULL;
            }
        }
        return fixed_kind;
    }
    char sym[128];
    snprintf(sym, sizeof sym, "MEMKIND_%s", name);
    memkind_t *var = dlsym(RTLD_DEFAULT, sym);
    if (!var || !*var) {
        snprintf(why, why_len, "no %s in the loaded library", sym);
        return NULL;
    }
    rc = memkind_check_available(*var);
    if (rc) {
        char msg[MEMKIND_ERROR_MESSAGE_SIZE];
        memkind_error_message(rc, msg, sizeof msg);
        snprintf(why, why_len, "check_available %d: %s", rc, msg);
        return NULL;
    }
    return *var;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: instr_pairs N WARMUP KIND:SIZE...\n");
        return 2;
    }
    long n = atol(argv[1]), warmup = atol(argv[2]);
    Dl_info info;
    printf("lib %s\n", dladdr((void *)memkind_malloc, &info) && info.dli_fname
                            ? info.dli_fname
                            : "?");
    printf("valgrind %d\n", RUNNING_ON_VALGRIND ? 1 : 0);
    const char *sem = getenv("INSTR_PROBE_SEMAPHORE");
    if (sem && *sem) {
        if (!info.dli_fbase) {
            fprintf(stderr, "INSTR_PROBE_SEMAPHORE: no base address of the library\n");
            return 2;
        }
        volatile unsigned short *s16 =
            (unsigned short *)((char *)info.dli_fbase + strtoul(sem, NULL, 0));
        *s16 = 1;
        printf("semaphore set at %p\n", (void *)s16);
    }
    fflush(stdout);
    /* Everything before this point (the loader, the libraries' constructors) runs uninstrumented. */
    CALLGRIND_START_INSTRUMENTATION;
    for (int a = 3; a < argc; a++) {
        char name[128], why[512] = "";
        const char *colon = strrchr(argv[a], ':');
        if (!colon || colon == argv[a] || (size_t)(colon - argv[a]) >= sizeof name) {
            fprintf(stderr, "bad cell %s (want KIND:SIZE)\n", argv[a]);
            return 2;
        }
        memcpy(name, argv[a], colon - argv[a]);
        name[colon - argv[a]] = 0;
        struct cell c = {.size = strtoul(colon + 1, NULL, 0)};
        if (!strcmp(name, "malloc")) {
            c.what = MALLOC;
        } else if (!strcmp(name, "mallocx")) {
            c.what = MALLOCX;
            c.mx = (mallocx_fn)dlsym(RTLD_DEFAULT, "mallocx");
            c.dx = (dallocx_fn)dlsym(RTLD_DEFAULT, "dallocx");
            if (!c.mx || !c.dx)
                snprintf(why, sizeof why, "no mallocx/dallocx in the process (preload jemalloc)");
        } else {
            c.what = MEMKIND;
            c.kind = kind_named(name, why, sizeof why);
        }
        if (!why[0] && probe(&c))
            snprintf(why, sizeof why, "allocation of %zu bytes returned NULL", c.size);
        if (why[0]) {
            printf("cell %s unavail %s\n", argv[a], why);
            fflush(stdout);
            continue;
        }
        run(&c, warmup);
        char label[160];
        for (int pass = 0; pass < 2; pass++) {
            long count = pass ? n : 0;
            CALLGRIND_TOGGLE_COLLECT;
            run(&c, count);
            CALLGRIND_TOGGLE_COLLECT;
            snprintf(label, sizeof label, "%s n=%ld", argv[a], count);
            CALLGRIND_DUMP_STATS_AT(label);
        }
        printf("cell %s ok\n", argv[a]);
        fflush(stdout);
    }
    if (pmem_kind)
        memkind_destroy_kind(pmem_kind);
    if (fixed_kind)
        memkind_destroy_kind(fixed_kind);
    return 0;
}
