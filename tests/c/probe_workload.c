/* A workload with known counts per kind, for memkind-probe's exactness tests
 * (tests/tests/kernel_probe.rs). It prints, on stdout, one line per kind it used:
 *   expect NAME allocs frees reallocs bytes_allocated bytes_freed touched_pages
 * (bytes as usable sizes, which is what the library counts), then "done". Each counted call is
 * accounted here as the probe's counters define it (alloc_counters in memkind_probe.h):
 * successful malloc / calloc / posix_memalign / realloc(NULL, n) are allocs, free of a non-NULL
 * pointer and realloc(p, 0) are frees, a successful realloc of a live block to n > 0 is a
 * realloc. Work is spread over the main thread, short-lived threads and a forked child, so the
 * flushes at thread exit, process exit, kind destroy and every 1024 events all take part.
 *
 * Usage: probe_workload [PMEM_DIR]   (no PMEM kind without a directory)
 */
#include <memkind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct acct {
    const char *name;
    memkind_t kind;
    unsigned long long allocs, frees, reallocs, bytes_allocated, bytes_freed, touched_pages;
};

enum { DEFAULT, REGULAR, HBW, INTERLEAVE, PMEM, NKINDS };
static struct acct tally[NKINDS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *alloc(int k, size_t n) {
    void *p = memkind_malloc(tally[k].kind, n);
    if (p) {
        pthread_mutex_lock(&lock);
        tally[k].allocs++;
        tally[k].bytes_allocated += memkind_malloc_usable_size(tally[k].kind, p);
        pthread_mutex_unlock(&lock);
    }
    return p;
}

static void release(int k, void *p) {
    if (!p)
        return;
    pthread_mutex_lock(&lock);
    tally[k].frees++;
    tally[k].bytes_freed += memkind_malloc_usable_size(tally[k].kind, p);
    pthread_mutex_unlock(&lock);
    memkind_free(tally[k].kind, p);
}

static void *grow(int k, void *p, size_t n) {
    size_t old = memkind_malloc_usable_size(tally[k].kind, p);
    void *q = memkind_realloc(tally[k].kind, p, n);
    if (q) {
        pthread_mutex_lock(&lock);
        tally[k].reallocs++;
        tally[k].bytes_freed += old;
        tally[k].bytes_allocated += memkind_malloc_usable_size(tally[k].kind, q);
        pthread_mutex_unlock(&lock);
    }
    return q;
}

/* Allocate `mib` MiB of kind k, touch every page, free it. */
static void touch(int k, size_t mib) {
    size_t n = mib << 20;
    char *p = alloc(k, n);
    if (!p)
        return;
    long page = sysconf(_SC_PAGESIZE);
    for (size_t off = 0; off < n; off += (size_t)page)
        p[off] = 1;
    tally[k].touched_pages += n / (size_t)page;
    release(k, p);
}

static void pairs(int k, int n, size_t size) {
    for (int i = 0; i < n; i++)
        release(k, alloc(k, size));
}

static void *thread_main(void *arg) {
    int k = (int)(long)arg;
    pairs(k, 700, 64);
    return NULL;
}

static int usable(memkind_t kind) { return memkind_check_available(kind) == 0; }

int main(int argc, char **argv) {
    tally[DEFAULT] = (struct acct){.name = "MEMKIND_DEFAULT", .kind = MEMKIND_DEFAULT};
    tally[REGULAR] = (struct acct){.name = "MEMKIND_REGULAR", .kind = MEMKIND_REGULAR};
    tally[HBW] = (struct acct){.name = "MEMKIND_HBW", .kind = MEMKIND_HBW};
    tally[INTERLEAVE] = (struct acct){.name = "MEMKIND_INTERLEAVE", .kind = MEMKIND_INTERLEAVE};
    int have[NKINDS] = {1, usable(MEMKIND_REGULAR), usable(MEMKIND_HBW),
                        usable(MEMKIND_INTERLEAVE), 0};

    /* DEFAULT: pairs (several flushes of 1024 events), calloc, posix_memalign, realloc(NULL)
     * and realloc(p, 0). */
    pairs(DEFAULT, 5000, 24);
    for (int i = 0; i < 100; i++) {
        void *p = memkind_calloc(MEMKIND_DEFAULT, 4, 8);
        if (p) {
            tally[DEFAULT].allocs++;
            tally[DEFAULT].bytes_allocated += memkind_malloc_usable_size(MEMKIND_DEFAULT, p);
        }
        release(DEFAULT, p);
    }
    for (int i = 0; i < 50; i++) {
        void *p = NULL;
        if (memkind_posix_memalign(MEMKIND_DEFAULT, &p, 64, 256) == 0) {
            tally[DEFAULT].allocs++;
            tally[DEFAULT].bytes_allocated += memkind_malloc_usable_size(MEMKIND_DEFAULT, p);
        }
        release(DEFAULT, p);
    }
    for (int i = 0; i < 30; i++) {
        void *p = memkind_realloc(MEMKIND_DEFAULT, NULL, 40);
        if (p) {
            tally[DEFAULT].allocs++;
            tally[DEFAULT].bytes_allocated += memkind_malloc_usable_size(MEMKIND_DEFAULT, p);
            tally[DEFAULT].frees++;
            tally[DEFAULT].bytes_freed += memkind_malloc_usable_size(MEMKIND_DEFAULT, p);
            memkind_realloc(MEMKIND_DEFAULT, p, 0);
        }
    }
    memkind_free(MEMKIND_DEFAULT, NULL); /* not counted */
    touch(DEFAULT, 4);

    if (have[REGULAR]) {
        for (int i = 0; i < 2000; i++) {
            void *p = alloc(REGULAR, 100);
            if (p)
                p = grow(REGULAR, p, 300);
            release(REGULAR, p);
        }
        touch(REGULAR, 8);
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, thread_main, (void *)(long)REGULAR);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
    if (have[HBW]) {
        pairs(HBW, 1500, 512);
        touch(HBW, 4);
    }
    if (have[INTERLEAVE]) {
        pairs(INTERLEAVE, 1200, 2048);
        touch(INTERLEAVE, 4);
    }
    if (argc > 1) {
        memkind_t pk = NULL;
        if (memkind_create_pmem(argv[1], 0, &pk) == 0) {
            static char name[300];
            snprintf(name, sizeof name, "PMEM:%s", argv[1]);
            tally[PMEM] = (struct acct){.name = name, .kind = pk};
            have[PMEM] = 1;
            pairs(PMEM, 900, 128); /* fewer than 1024 events: flushed at destroy */
            touch(PMEM, 4);
            memkind_destroy_kind(pk);
        }
    }

    /* A forked child (its counts are its own process's; the expectations below are this
     * process's alone). */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pairs(DEFAULT, 300, 16);
        exit(0); /* exit, not _exit: the library flushes the child's counts at exit */
    }
    if (c > 0) {
        int st = -1;
        waitpid(c, &st, 0);
        /* The child's own process row: 300 DEFAULT pairs; it must exit normally under the
         * probe (a probed nop5 turned into a call to a trampoline fork does not copy killed it). */
        printf("child %d status %d allocs 300 frees 300\n", (int)c, st);
    }
    printf("pid %d\n", (int)getpid());
    for (int k = 0; k < NKINDS; k++)
        if (have[k])
            printf("expect %s %llu %llu %llu %llu %llu %llu\n", tally[k].name, tally[k].allocs,
                   tally[k].frees, tally[k].reallocs, tally[k].bytes_allocated, tally[k].bytes_freed,
                   tally[k].touched_pages);
    printf("done\n");
    return 0;
}
