/* The workloads of probe-bench (tests/src/bin/probe-bench.rs): each times itself and prints one
 * line "result NAME VALUE UNIT".
 *
 *   probe_bench pairs KIND SIZE THREADS MS   malloc/free pairs of KIND (DEFAULT, REGULAR, or
 *                                            "libc" for plain malloc/free: jemalloc's own fast
 *                                            path under LD_PRELOAD=libjemalloc.so.2) for MS ms per
 *                                            sample, median of 7 samples: ns per pair
 *   probe_bench faults KIND MIB              allocate MIB MiB of KIND and touch each 4 KiB page
 *                                            once (fresh memory): ns per page (median of 5)
 *   probe_bench park THREADS                 start THREADS threads that each allocate once and
 *                                            wait; print "ready" and wait for a line on stdin
 */
#include <memkind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static memkind_t kind_of(const char *name) {
    if (!strcmp(name, "DEFAULT"))
        return MEMKIND_DEFAULT;
    if (!strcmp(name, "REGULAR"))
        return MEMKIND_REGULAR;
    if (!strcmp(name, "libc"))
        return NULL;
    fprintf(stderr, "unknown kind %s\n", name);
    exit(2);
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct job {
    memkind_t kind;
    size_t size;
    double ms;
    double ns_per_pair;
    pthread_barrier_t *go;
};

static void *pairs_thread(void *arg) {
    struct job *j = arg;
    double samples[7];
    /* warm up: caches, arenas, the probe's per-thread record */
    for (int i = 0; i < 100000; i++) {
        char *p = j->kind ? memkind_malloc(j->kind, j->size) : malloc(j->size);
        p[0] = 1;
        j->kind ? memkind_free(j->kind, p) : free(p);
    }
    pthread_barrier_wait(j->go);
    for (int s = 0; s < 7; s++) {
        long n = 0;
        double t0 = now_ns(), t;
        do {
            for (int i = 0; i < 10000; i++) {
                char *p = j->kind ? memkind_malloc(j->kind, j->size) : malloc(j->size);
                p[0] = 1;
                j->kind ? memkind_free(j->kind, p) : free(p);
            }
            n += 10000;
            t = now_ns();
        } while (t - t0 < j->ms * 1e6);
        samples[s] = (t - t0) / n;
    }
    qsort(samples, 7, sizeof samples[0], cmp);
    j->ns_per_pair = samples[3];
    return NULL;
}

static void pairs(memkind_t kind, size_t size, int threads, double ms) {
    pthread_t t[64];
    struct job j[64];
    pthread_barrier_t go;
    if (threads < 1 || threads > 64)
        exit(2);
    pthread_barrier_init(&go, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        j[i] = (struct job){.kind = kind, .size = size, .ms = ms, .go = &go};
        pthread_create(&t[i], NULL, pairs_thread, &j[i]);
    }
    double worst = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        if (j[i].ns_per_pair > worst)
            worst = j[i].ns_per_pair;
    }
    printf("result pairs %.2f ns\n", worst);
}

static void faults(memkind_t kind, size_t mib) {
    double samples[5];
    size_t n = mib << 20;
    for (int s = 0; s < 5; s++) {
        char *p = kind ? memkind_malloc(kind, n) : malloc(n);
        if (!p) {
            fprintf(stderr, "allocation of %zu MiB failed\n", mib);
            exit(1);
        }
        /* Base pages only: the figure is the cost of one 4 KiB fault. */
        madvise((void *)(((unsigned long)p + 4095) & ~4095UL), n - 4096, MADV_NOHUGEPAGE);
        double t0 = now_ns();
        for (size_t off = 4096; off < n; off += 4096)
            p[off] = 1;
        samples[s] = (now_ns() - t0) / (double)(n / 4096 - 1);
        kind ? memkind_free(kind, p) : free(p);
    }
    qsort(samples, 5, sizeof samples[0], cmp);
    printf("result faults %.1f ns\n", samples[2]);
}

static pthread_barrier_t parked;
static void *park_thread(void *arg) {
    (void)arg;
    memkind_free(NULL, memkind_malloc(MEMKIND_REGULAR, 64));
    pthread_barrier_wait(&parked);
    pthread_barrier_wait(&parked);
    return NULL;
}

static void park(int threads) {
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    pthread_barrier_init(&parked, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, park_thread, NULL);
    pthread_barrier_wait(&parked);
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    pthread_barrier_wait(&parked);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    free(t);
}

int main(int argc, char **argv) {
    if (argc >= 6 && !strcmp(argv[1], "pairs"))
        pairs(kind_of(argv[2]), strtoul(argv[3], NULL, 0), atoi(argv[4]), atof(argv[5]));
    else if (argc >= 4 && !strcmp(argv[1], "faults"))
        faults(kind_of(argv[2]), strtoul(argv[3], NULL, 0));
    else if (argc >= 3 && !strcmp(argv[1], "park"))
        park(atoi(argv[2]));
    else {
        fprintf(stderr, "usage: see the comment at the top of probe_bench.c\n");
        return 2;
    }
    return 0;
}
