/* A memkind workload with counts it knows, for probe-cli/tests/cli.rs and prometheus.rs.
 *
 * Usage: cli_workload [hold_ms [exit_code]]
 * Allocates with MEMKIND_DEFAULT and MEMKIND_REGULAR (malloc, calloc, posix_memalign, realloc,
 * free) in a thread that then ends (so the library has handed every count over to the probe
 * at its exit), frees everything, then sleeps hold_ms (so a scraper can look) and exits
 * exit_code.
 * Prints, on stdout, one line per kind:
 *   expect NAME allocs frees reallocs bytes_requested bytes_allocated bytes_freed
 * (bytes by memkind_malloc_usable_size, as the library counts them), then "done".
 */
#include <memkind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct expect {
    const char *name;
    unsigned long long allocs, frees, reallocs, requested, allocated, freed;
};

#define N 1500

static void run(memkind_t kind, struct expect *e)
{
    static void *p[N];
    for (int i = 0; i < N; i++) {
        size_t n = 8 + (size_t)(i % 50) * 24;
        p[i] = memkind_malloc(kind, n);
        if (!p[i]) { perror("malloc"); exit(2); }
        memset(p[i], 1, n);
        e->allocs++;
        e->requested += n;
        e->allocated += memkind_malloc_usable_size(kind, p[i]);
    }
    for (int i = 0; i < N; i += 3) {
        size_t n = 4000 + (size_t)i;
        e->freed += memkind_malloc_usable_size(kind, p[i]);
        p[i] = memkind_realloc(kind, p[i], n);
        if (!p[i]) { perror("realloc"); exit(2); }
        e->reallocs++;
        e->requested += n;
        e->allocated += memkind_malloc_usable_size(kind, p[i]);
    }
    void *c = memkind_calloc(kind, 10, 100);
    e->allocs++;
    e->requested += 1000;
    e->allocated += memkind_malloc_usable_size(kind, c);
    void *a = NULL;
    if (memkind_posix_memalign(kind, &a, 64, 4096) != 0) { perror("posix_memalign"); exit(2); }
    e->allocs++;
    e->requested += 4096;
    e->allocated += memkind_malloc_usable_size(kind, a);
    for (int i = 0; i < N; i++) {
        e->freed += memkind_malloc_usable_size(kind, p[i]);
        memkind_free(kind, p[i]);
        e->frees++;
    }
    e->freed += memkind_malloc_usable_size(kind, c) + memkind_malloc_usable_size(kind, a);
    memkind_free(kind, c);
    memkind_free(kind, a);
    e->frees += 2;
    memkind_free(kind, NULL); /* not counted */
}

static struct expect d = {"MEMKIND_DEFAULT"}, r = {"MEMKIND_REGULAR"};

static void *work(void *arg)
{
    (void)arg;
    run(MEMKIND_DEFAULT, &d);
    run(MEMKIND_REGULAR, &r);
    return NULL;
}

int main(int argc, char **argv)
{
    long hold_ms = argc > 1 ? atol(argv[1]) : 0;
    int code = argc > 2 ? atoi(argv[2]) : 0;
    pthread_t t;
    if (pthread_create(&t, NULL, work, NULL) != 0 || pthread_join(t, NULL) != 0) {
        perror("pthread");
        return 2;
    }
    struct expect *all[] = {&d, &r};
    for (int i = 0; i < 2; i++)
        printf("expect %s %llu %llu %llu %llu %llu %llu\n", all[i]->name, all[i]->allocs, all[i]->frees,
               all[i]->reallocs, all[i]->requested, all[i]->allocated, all[i]->freed);
    printf("done\n");
    fflush(stdout);
    if (hold_ms > 0) {
        struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return code;
}
