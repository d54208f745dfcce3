/* Churn with a bounded working set, for comparing VmRSS over time between memkind 1.14 and
 * memkind-rs (tests/stress/compare_rss.sh builds it against both). The same workload as
 * tests/tests/stress.rs's churn: 4 threads, each replacing random entries of a 1500-block working
 * set in DEFAULT, REGULAR, a PMEM kind and a fixed kind, sizes mostly small, some up to 3 MiB.
 * Prints "t_s rss_kib" once a second, then "ops N".
 *   churn_rss <seconds> <pmem dir> */
#include <memkind.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define SET 1500
#define MIB (1UL << 20)

static memkind_t kinds[4];
static atomic_int stop;
static atomic_ulong ops;

static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

static size_t below(uint64_t *s, size_t n) { return next(s) % n; }

static size_t size(uint64_t *s)
{
    size_t c = below(s, 100);
    if (c < 70) return 1 + below(s, 512);
    if (c < 95) return 1 + below(s, 64 << 10);
    if (c < 99) return 1 + below(s, 512 << 10);
    return 1 + below(s, 3 * MIB);
}

static void *worker(void *arg)
{
    uint64_t s = 0x12345678 ^ ((uintptr_t)arg + 1);
    void **set = calloc(SET, sizeof(void *));
    memkind_t *kind = calloc(SET, sizeof(memkind_t));
    /* Freed through their kind: 1.14 segfaults on memkind_free(NULL, p) here. */
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        size_t i = below(&s, SET);
        if (set[i]) memkind_free(kind[i], set[i]);
        set[i] = NULL;
        memkind_t k = kinds[below(&s, 4)];
        size_t n = size(&s);
        void *p = memkind_malloc(k, n);
        if (!p) continue; /* the fixed kind may be full */
        memset(p, (int)n, n < 256 ? n : 256);
        set[i] = p;
        kind[i] = k;
        atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
    }
    for (size_t i = 0; i < SET; i++)
        if (set[i]) memkind_free(kind[i], set[i]);
    free(set);
    free(kind);
    return NULL;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s seconds pmem-dir\n", argv[0]);
        return 2;
    }
    int secs = atoi(argv[1]);
    kinds[0] = MEMKIND_DEFAULT;
    kinds[1] = MEMKIND_REGULAR;
    if (memkind_create_pmem(argv[2], 0, &kinds[2])) return 3;
    size_t flen = 128 * MIB;
    void *buf = calloc(1, flen);
    if (memkind_create_fixed(buf, flen, &kinds[3])) return 4;
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 1; i <= secs; i++) {
        sleep(1);
        printf("%d %ld\n", i, rss_kib());
        fflush(stdout);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("ops %lu\n", (unsigned long)atomic_load(&ops));
    memkind_destroy_kind(kinds[2]);
    memkind_destroy_kind(kinds[3]);
    free(buf);
    return 0;
}
