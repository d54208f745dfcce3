/* Destroying a PMEM kind whose blocks were all freed gives everything back, as in memkind 1.14:
 * no mapping of the kind's (unlinked) file stays in /proc/self/maps, and the file system's free
 * blocks (statvfs of the directory) come back to what they were before the kind was created.
 * Several patterns: small blocks only, large blocks, a mix, a size-limited kind, several kinds,
 * and blocks that passed through another thread which is still alive at the destroy (its
 * per-thread caches of the kind), under both memory usage policies.
 * usage: pmem_destroy <writable dir, not DAX> [nofs]
 * `nofs`: do not judge the free blocks (a file system other processes write to meanwhile, such
 * as the root file system under /tmp, moves by megabytes between two statvfs calls).
 */
#include "common.h"
#include <pthread.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *dir;
static int judge_fs = 1;

/* Lines of /proc/self/maps that map a file of `dir`. */
static int mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[4096], pat[4096];
    snprintf(pat, sizeof pat, "%s/memkind.", dir);
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, pat))
            n++;
    fclose(f);
    return n;
}

/* Free bytes of the file system. ext4 returns freed blocks only when its journal commits (every
 * few seconds): sync first, so the count is current. */
static long long free_bytes(void)
{
    sync();
    struct statvfs s;
    if (statvfs(dir, &s) != 0)
        return -1;
    return (long long)s.f_bfree * (long long)s.f_frsize;
}

/* Slack for other users of the file system meanwhile; a leaked granule is 2 MiB. */
#define SLACK ((long long)512 * 1024)

static const char *restored(long long before)
{
    if (!judge_fs)
        return "skipped";
    return free_bytes() >= before - SLACK ? "yes" : "no";
}

static const char *used(long long before, long long during)
{
    if (!judge_fs)
        return "skipped";
    return before - during > 4 * 1024 * 1024 ? "yes" : "no";
}

static void pattern(const char *name, size_t max, const size_t *sizes, int nsizes, int count)
{
    long long before = free_bytes();
    memkind_t k = NULL;
    int rc = memkind_create_pmem(dir, max, &k);
    printf("%s: create rc=%d\n", name, rc);
    if (rc)
        return;
    void **p = calloc((size_t)count * nsizes, sizeof(void *));
    int got = 0;
    for (int i = 0; i < count; i++)
        for (int j = 0; j < nsizes; j++) {
            char *b = memkind_malloc(k, sizes[j]);
            if (b) {
                memset(b, 0x5a, sizes[j]);
                p[got++] = b;
            }
        }
    long long during = free_bytes();
    int m = mappings();
    printf("  all allocated=%d mapped=%d fs_used=%s\n", got == count * nsizes, m > 0,
           used(before, during));
    for (int i = 0; i < got; i++)
        memkind_free(i % 2 ? NULL : k, p[i]);
    free(p);
    printf("  destroy rc=%d\n", memkind_destroy_kind(k));
    m = mappings();
    printf("  after destroy: mappings=%d fs_free_restored=%s\n", m, restored(before));
}

/* The threaded patterns: a second thread works on the kind, then waits, alive, while main
 * destroys the kind. */
enum { T_CHURN, T_FREES_MAINS, T_ALLOCS_FOR_MAIN, T_REALLOC, T_ALIGNED };
static memkind_t tk;
static void *tblocks[5000];
static int tn;
static pthread_barrier_t tbar;

static void *worker(void *arg)
{
    int mode = (int)(intptr_t)arg;
    if (mode == T_CHURN)
        for (int i = 0; i < 5000; i++)
            memkind_free(tk, memkind_malloc(tk, 32 + (size_t)(i % 7) * 100));
    if (mode == T_FREES_MAINS)
        for (int i = 0; i < tn; i++)
            memkind_free(tk, tblocks[i]);
    if (mode == T_ALLOCS_FOR_MAIN)
        for (tn = 0; tn < 5000; tn++)
            tblocks[tn] = memkind_malloc(tk, 64);
    if (mode == T_REALLOC) {
        void *p = NULL;
        for (int i = 0; i < 3000; i++)
            p = memkind_realloc(tk, p, (size_t)(i * 37) % 70000 + 1);
        memkind_free(tk, p);
    }
    if (mode == T_ALIGNED)
        for (int i = 0; i < 3000; i++) {
            void *p = NULL;
            if (memkind_posix_memalign(tk, &p, (size_t)4096 << (i % 6), 100 + (size_t)i) == 0)
                memkind_free(tk, p);
        }
    pthread_barrier_wait(&tbar); /* done */
    pthread_barrier_wait(&tbar); /* main has destroyed the kind */
    return NULL;
}

static void threaded(const char *name, int mode, memkind_mem_usage_policy policy)
{
    struct memkind_config *cfg = memkind_config_new();
    memkind_config_set_path(cfg, dir);
    memkind_config_set_size(cfg, 0);
    memkind_config_set_memory_usage_policy(cfg, policy);
    int rc = memkind_create_pmem_with_config(cfg, &tk);
    memkind_config_delete(cfg);
    printf("%s: create rc=%d\n", name, rc);
    if (rc)
        return;
    tn = 0;
    if (mode == T_FREES_MAINS)
        for (; tn < 5000; tn++)
            tblocks[tn] = memkind_malloc(tk, 48 + (size_t)(tn % 5) * 300);
    pthread_barrier_init(&tbar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)(intptr_t)mode);
    pthread_barrier_wait(&tbar);
    if (mode == T_ALLOCS_FOR_MAIN)
        for (int i = 0; i < tn; i++)
            memkind_free(tk, tblocks[i]);
    rc = memkind_destroy_kind(tk);
    printf("  destroy rc=%d mappings=%d (other thread alive)\n", rc, mappings());
    pthread_barrier_wait(&tbar);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&tbar);
}

int main(int argc, char **argv)
{
    setup_stdout();
    dir = argc > 1 ? argv[1] : "/tmp";
    judge_fs = !(argc > 2 && strcmp(argv[2], "nofs") == 0);
    static const size_t small[] = {16, 64, 100, 512, 4096};
    static const size_t large[] = {1 * MiB, 3 * MiB, 8 * MiB};
    static const size_t mixed[] = {32, 5000, 70000, 1 * MiB, 2 * MiB + 1, 128};
    pattern("small", 0, small, 5, 4000);
    pattern("large", 0, large, 3, 4);
    pattern("mixed", 0, mixed, 6, 20);
    pattern("mixed_max_64M", 64 * MiB, mixed, 6, 10);
    pattern("one_block", 0, small, 1, 1);

    /* Two kinds at once, destroyed in turn. */
    long long before = free_bytes();
    memkind_t a = NULL, b = NULL;
    int ra = memkind_create_pmem(dir, 0, &a);
    int rb = memkind_create_pmem(dir, 0, &b);
    printf("two kinds: create rc=%d,%d\n", ra, rb);
    if (ra == 0 && rb == 0) {
        void *pa = memkind_malloc(a, 3 * MiB), *pb = memkind_malloc(b, 100);
        memset(pa, 1, 3 * MiB);
        memset(pb, 2, 100);
        memkind_free(a, pa);
        int rc = memkind_destroy_kind(a);
        int m = mappings();
        printf("  destroy a rc=%d b_still_mapped=%d\n", rc, m > 0);
        memkind_free(b, pb);
        rc = memkind_destroy_kind(b);
        m = mappings();
        printf("  destroy b rc=%d mappings=%d fs_free_restored=%s\n", rc, m, restored(before));
    }

    /* A 16 MiB kind filled until ENOMEM, emptied, destroyed. */
    before = free_bytes();
    memkind_t f = NULL;
    printf("full kind: create rc=%d\n", memkind_create_pmem(dir, 16 * MiB, &f));
    if (f) {
        void *blk[64];
        int n = 0;
        while (n < 64 && (blk[n] = memkind_malloc(f, 1 * MiB)))
            memset(blk[n++], 3, 4096);
        errno = 0;
        void *more = memkind_malloc(f, 1 * MiB);
        printf("  filled=%d then null=%d errno=%s\n", n > 8, more == NULL, errno_name(errno));
        for (int i = 0; i < n; i++)
            memkind_free(f, blk[i]);
        int rc = memkind_destroy_kind(f);
        int m = mappings();
        printf("  destroy rc=%d mappings=%d fs_free_restored=%s\n", rc, m, restored(before));
    }

    static const char *const names[] = {"thread_churn", "thread_frees_mains",
                                        "thread_allocs_for_main", "thread_realloc",
                                        "thread_aligned"};
    for (int mode = T_CHURN; mode <= T_ALIGNED; mode++) {
        char name[64];
        snprintf(name, sizeof name, "%s_default", names[mode]);
        threaded(name, mode, MEMKIND_MEM_USAGE_POLICY_DEFAULT);
        snprintf(name, sizeof name, "%s_conservative", names[mode]);
        threaded(name, mode, MEMKIND_MEM_USAGE_POLICY_CONSERVATIVE);
    }
    return 0;
}
