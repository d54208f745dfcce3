/* Known numbers of calls per kind against memkind-rs, with the counts the probe must report
 * computed here as the calls are made (usable sizes from memkind_malloc_usable_size) and printed
 * as "expect NAME allocs frees reallocs bytes_requested bytes_allocated bytes_freed b0..b15".
 *
 *   ours_workload run DIR    count from the start (the probe is attached before exec)
 *   ours_workload wait DIR   phase 1 uncounted; print "ready", wait for a line on stdin (the probe
 *                            attaches to the running process), then phase 2, counted
 *
 * DIR is a directory for a PMEM kind. Also touches TOUCH_PAGES fresh 4 KiB pages of one
 * MEMKIND_REGULAR block ("touched N" on stdout). */
#define _GNU_SOURCE
#include <memkind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BUCKETS 16
#define THREADS 3
#define PER_THREAD 100
#define TOUCH_BYTES (16u << 20)
/* "wait" mode: a block of more granules than one BPF program run maps (a tail-call chain). */
#define BIG_BYTES (600ul << 20)

struct expect {
    const char *name;
    unsigned long long allocs, frees, reallocs, req, alloc_bytes, freed_bytes, b[BUCKETS];
    pthread_mutex_t lock;
};

static unsigned bucket(size_t n)
{
    unsigned b = 0;
    while (b < BUCKETS - 1 && n > (16ull << b))
        b++;
    return b;
}

static struct expect e_default = { "MEMKIND_DEFAULT", .lock = PTHREAD_MUTEX_INITIALIZER };
static struct expect e_regular = { "MEMKIND_REGULAR", .lock = PTHREAD_MUTEX_INITIALIZER };
static struct expect e_pmem = { NULL, .lock = PTHREAD_MUTEX_INITIALIZER };
static int counting;

static void *m(struct expect *e, memkind_t k, size_t n)
{
    void *p = memkind_malloc(k, n);
    if (!p)
        abort();
    if (counting) {
        pthread_mutex_lock(&e->lock);
        e->allocs++;
        e->req += n;
        e->alloc_bytes += memkind_malloc_usable_size(k, p);
        e->b[bucket(n)]++;
        pthread_mutex_unlock(&e->lock);
    }
    return p;
}

static void f(struct expect *e, memkind_t k, void *p)
{
    if (counting) {
        pthread_mutex_lock(&e->lock);
        e->frees++;
        e->freed_bytes += memkind_malloc_usable_size(k, p);
        pthread_mutex_unlock(&e->lock);
    }
    memkind_free(k, p);
}

static void *r(struct expect *e, memkind_t k, void *p, size_t n)
{
    size_t old = memkind_malloc_usable_size(k, p);
    void *q = memkind_realloc(k, p, n);
    if (!q)
        abort();
    if (counting) {
        pthread_mutex_lock(&e->lock);
        e->reallocs++;
        e->req += n;
        e->freed_bytes += old;
        e->alloc_bytes += memkind_malloc_usable_size(k, q);
        e->b[bucket(n)]++;
        pthread_mutex_unlock(&e->lock);
    }
    return q;
}

static memkind_t pmem;

static void *worker(void *arg)
{
    (void)arg;
    void *a[PER_THREAD], *b[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++) {
        a[i] = m(&e_default, MEMKIND_DEFAULT, 48);
        b[i] = m(&e_regular, MEMKIND_REGULAR, 3000);
    }
    for (int i = 0; i < PER_THREAD; i++) {
        f(&e_default, MEMKIND_DEFAULT, a[i]);
        f(&e_regular, MEMKIND_REGULAR, b[i]);
    }
    return NULL;
}

static void work(void)
{
    static void *p[1000];
    for (int i = 0; i < 1000; i++)
        p[i] = m(&e_default, MEMKIND_DEFAULT, 24 + i % 200);
    for (int i = 0; i < 1000; i++)
        f(&e_default, MEMKIND_DEFAULT, p[i]);
    for (int i = 0; i < 700; i++)
        p[i] = m(&e_regular, MEMKIND_REGULAR, 100 + i * 7);
    for (int i = 0; i < 10; i++)
        p[i] = r(&e_regular, MEMKIND_REGULAR, p[i], 20000);
    for (int i = 0; i < 700; i++)
        f(&e_regular, MEMKIND_REGULAR, p[i]);
    for (int i = 0; i < 50; i++)
        p[i] = m(&e_pmem, pmem, 256);
    for (int i = 0; i < 50; i++)
        f(&e_pmem, pmem, p[i]);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static void print(const struct expect *e)
{
    printf("expect %s %llu %llu %llu %llu %llu %llu", e->name, e->allocs, e->frees, e->reallocs,
           e->req, e->alloc_bytes, e->freed_bytes);
    for (int i = 0; i < BUCKETS; i++)
        printf(" %llu", e->b[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int wait = !strcmp(argv[1], "wait");
    counting = !wait;
    static char name[300];
    if (memkind_create_pmem(argv[2], 0, &pmem))
        return 3;
    snprintf(name, sizeof name, "PMEM:%s", argv[2]);
    e_pmem.name = name;
    work();
    char *bigblock = NULL;
    if (wait) {
        char line[16];
        bigblock = memkind_malloc(MEMKIND_REGULAR, BIG_BYTES);
        if (!bigblock)
            return 5;
        printf("ready\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            return 4;
        counting = 1;
        work();
    }
    /* Fresh pages of one REGULAR block, touched once each (no THP: one fault per page). */
    char *big = m(&e_regular, MEMKIND_REGULAR, TOUCH_BYTES);
    unsigned long start = ((unsigned long)big + 4095) & ~4095ul;
    unsigned long end = ((unsigned long)big + TOUCH_BYTES) & ~4095ul;
    madvise((void *)start, end - start, MADV_NOHUGEPAGE);
    unsigned long touched = 0;
    for (unsigned long a = start; a < end; a += 4096, touched++)
        *(volatile char *)a = 1;
    f(&e_regular, MEMKIND_REGULAR, big);
    printf("touched %lu\n", touched);
    print(&e_default);
    print(&e_regular);
    print(&e_pmem);
    if (wait) {
        /* Still mapped (never freed: its free would be counted after the expectations). */
        char line[16];
        printf("big %p %lu\n", (void *)bigblock, BIG_BYTES);
        printf("done\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            return 4;
    }
    fflush(stdout);
    memkind_destroy_kind(pmem);
    return 0;
}
