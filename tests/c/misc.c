/* Less central API: stats return codes, background threads, DAX path check, PMEM and fixed
 * kinds (creation rules, allocation, detect_kind, destroy), partition of a dynamic kind.
 * usage: misc <writable dir that is not DAX-mounted>
 */
#include "common.h"
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static const char *kname(memkind_t k, memkind_t dyn)
{
    return k && k == dyn ? "<the dynamic kind>" : kind_name(k);
}

int main(int argc, char **argv)
{
    setup_stdout();
    const char *dir = argc > 1 ? argv[1] : "/tmp";

    /* Stats: return codes and coarse facts only. */
    printf("update_cached_stats rc=%d\n", memkind_update_cached_stats());
    size_t v = 12345;
    printf("get_stat bad_type rc=%d untouched=%d\n",
           memkind_get_stat(NULL, MEMKIND_STAT_TYPE_MAX_VALUE, &v), v == 12345);
    void *big = memkind_malloc(MEMKIND_REGULAR, 8 * MiB);
    memset(big, 1, 8 * MiB);
    printf("update_cached_stats rc=%d\n", memkind_update_cached_stats());
    for (int t = 0; t < MEMKIND_STAT_TYPE_MAX_VALUE; t++) {
        size_t g = 0, k = 0;
        int rg = memkind_get_stat(NULL, (memkind_stat_type)t, &g);
        int rk = memkind_get_stat(MEMKIND_REGULAR, (memkind_stat_type)t, &k);
        printf("get_stat type=%d global rc=%d ge8M=%d regular rc=%d ge8M=%d\n", t, rg,
               g >= 8 * MiB, rk, k >= 8 * MiB);
    }
    memkind_free(MEMKIND_REGULAR, big);

    printf("set_bg_threads(false) rc=%d\n", memkind_set_bg_threads(false));

    /* DAX path check on a non-DAX directory and a missing one. */
    printf("check_dax_path plain_dir rc=%d\n", memkind_check_dax_path(dir));
    printf("check_dax_path missing rc=%d\n", memkind_check_dax_path("/nonexistent/memkind-diff"));

    /* PMEM creation rules. */
    memkind_t pk = NULL;
    printf("create_pmem too_small rc=%d\n", memkind_create_pmem(dir, MEMKIND_PMEM_MIN_SIZE - 1, &pk));
    printf("create_pmem missing_dir rc=%d\n",
           memkind_create_pmem("/nonexistent/memkind-diff", 0, &pk));
    pk = NULL;
    int rc = memkind_create_pmem(dir, MEMKIND_PMEM_MIN_SIZE, &pk);
    printf("create_pmem min_size rc=%d\n", rc);
    if (rc == 0) {
        printf("  check_available=%d capacity=%s\n", memkind_check_available(pk),
               sign_class(memkind_get_capacity(pk)));
        void *p = memkind_malloc(pk, 1000);
        printf("  malloc ok=%d", p != NULL);
        if (p) {
            fill(p, 1000, 3);
            printf(" data=%d usable_ge=%d detect=%s", check_fill(p, 1000, 3),
                   memkind_malloc_usable_size(pk, p) >= 1000, kname(memkind_detect_kind(p), pk));
            memkind_free(NULL, p);
        }
        printf("\n");
        /* Filling past the limit fails with ENOMEM. */
        int n = 0;
        void *blocks[64];
        errno = 0;
        while (n < 64 && (blocks[n] = memkind_malloc(pk, 1 * MiB)) != NULL)
            n++;
        printf("  fill 1MiB blocks: stopped_before_64=%d errno=%s\n", n < 64, errno_name(errno));
        for (int i = 0; i < n; i++)
            memkind_free(pk, blocks[i]);
        void *again = memkind_malloc(pk, 1 * MiB);
        printf("  after_free malloc_ok=%d\n", again != NULL);
        memkind_free(pk, again);
        memkind_t byp = (memkind_t)0x1;
        int prc = memkind_get_kind_by_partition(MEMKIND_NUM_BASE_KIND, &byp);
        printf("  partition %d rc=%d kind=%s\n", MEMKIND_NUM_BASE_KIND, prc, kname(byp, pk));
        printf("  destroy rc=%d\n", memkind_destroy_kind(pk));
        byp = (memkind_t)0x1;
        prc = memkind_get_kind_by_partition(MEMKIND_NUM_BASE_KIND, &byp);
        printf("  after destroy partition %d rc=%d kind=%s\n", MEMKIND_NUM_BASE_KIND, prc,
               kname(byp, pk));
    }

    /* PMEM through a config. */
    struct memkind_config *cfg = memkind_config_new();
    memkind_config_set_path(cfg, dir);
    memkind_config_set_size(cfg, 0);
    memkind_config_set_memory_usage_policy(cfg, MEMKIND_MEM_USAGE_POLICY_CONSERVATIVE);
    pk = NULL;
    rc = memkind_create_pmem_with_config(cfg, &pk);
    printf("create_pmem_with_config unlimited conservative rc=%d\n", rc);
    if (rc == 0) {
        void *p = memkind_calloc(pk, 10, 10);
        printf("  calloc ok=%d zero=%d\n", p != NULL, p && all_zero(p, 100));
        memkind_free(pk, p);
        printf("  destroy rc=%d\n", memkind_destroy_kind(pk));
    }
    memkind_config_delete(cfg);

    /* Fixed kind over a caller buffer. */
    size_t fsz = 32 * MiB;
    void *buf = NULL;
    posix_memalign(&buf, 2 * MiB, fsz);
    memkind_t fk = NULL;
    rc = memkind_create_fixed(buf, fsz, &fk);
    printf("create_fixed rc=%d\n", rc);
    if (rc == 0) {
        char *p = memkind_malloc(fk, 4096);
        printf("  malloc ok=%d inside=%d detect=%s\n", p != NULL,
               p && p >= (char *)buf && p + 4096 <= (char *)buf + fsz,
               p ? kname(memkind_detect_kind(p), fk) : "-");
        memkind_free(fk, p);
        printf("  destroy rc=%d\n", memkind_destroy_kind(fk));
    }
    free(buf);
    printf("DONE\n");
    return 0;
}
