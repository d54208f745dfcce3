/* Reuse under MEMKIND_MEM_USAGE_POLICY_CONSERVATIVE: fill a 16 MiB PMEM kind with small blocks
 * until NULL, free everything, fill again with the same sizes. memkind 1.14 (no thread cache
 * for PMEM kinds, freed memory purged at once) fits at least 98% of the first fill the second
 * time; printed as yes/no so the output is deterministic. Patterns: one size, random sizes freed
 * in allocation order and shuffled.
 * usage: pmem_conservative <writable dir, not DAX>
 */
#include "common.h"

static unsigned long long rs;
static unsigned long long rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

#define MAXBLOCKS (2 * 1024 * 1024)
static void *blocks[MAXBLOCKS];

static long fill_round(memkind_t k, size_t lo, size_t hi, int shuffle)
{
    rs = 88172645463325252ull;
    long n = 0;
    while (n < MAXBLOCKS && (blocks[n] = memkind_malloc(k, lo + rnd() % (hi - lo + 1))))
        n++;
    if (shuffle)
        for (long i = n - 1; i > 0; i--) {
            long j = (long)(rnd() % (unsigned long long)(i + 1));
            void *t = blocks[i];
            blocks[i] = blocks[j];
            blocks[j] = t;
        }
    for (long i = 0; i < n; i++)
        memkind_free(i % 3 ? k : NULL, blocks[i]);
    return n;
}

static void pattern(const char *dir, const char *name, size_t lo, size_t hi, int shuffle)
{
    struct memkind_config *cfg = memkind_config_new();
    memkind_config_set_path(cfg, dir);
    memkind_config_set_size(cfg, 16 * MiB);
    memkind_config_set_memory_usage_policy(cfg, MEMKIND_MEM_USAGE_POLICY_CONSERVATIVE);
    memkind_t k = NULL;
    int rc = memkind_create_pmem_with_config(cfg, &k);
    memkind_config_delete(cfg);
    printf("%s: create rc=%d", name, rc);
    if (rc) {
        printf("\n");
        return;
    }
    long n1 = fill_round(k, lo, hi, shuffle);
    long n2 = fill_round(k, lo, hi, shuffle);
    printf(" first_fill_ok=%d second_ge_98pct=%s", n1 > 200, n2 * 100 >= n1 * 98 ? "yes" : "no");
    printf(" destroy rc=%d\n", memkind_destroy_kind(k));
}

int main(int argc, char **argv)
{
    setup_stdout();
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    pattern(dir, "100 bytes", 100, 100, 0);
    pattern(dir, "1-256 bytes shuffled", 1, 256, 1);
    pattern(dir, "1-4096 bytes shuffled", 1, 4096, 1);
    pattern(dir, "1-64K bytes shuffled", 1, 65536, 1);
    return 0;
}
