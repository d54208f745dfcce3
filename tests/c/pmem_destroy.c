/* Destroying a PMEM kind whose blocks were all freed gives everything back, as in memkind 1.14:
 * no mapping of the kind's (unlinked) file stays in /proc/self/maps, and the file system's free
 * blocks (statvfs of the directory) come back to what they were before the kind was created.
 * Several patterns: small blocks only, large blocks, a mix, a size-limited kind, several kinds.
 * usage: pmem_destroy <writable dir, not DAX> [nofs]
 * `nofs`: do not judge the free blocks (a file system other processes write to meanwhile, such
 * as the root file system under /tmp, moves by megabytes between two statvfs calls).
 */
#include "common.h"
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
    return 0;
}
