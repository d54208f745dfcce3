/* PMEM kinds: memkind_check_dax_path, memkind_create_pmem rules (size, directory), allocation
 * battery, limit -> ENOMEM and recovery, partition of the dynamic kind, configs (policies,
 * invalid values), several kinds at once, destroy and re-create.
 * usage: pmem <writable dir that is not DAX-mounted>
 */
#include "common.h"
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static const char *kname(memkind_t k, memkind_t dyn)
{
    return k && k == dyn ? "<the dynamic kind>" : kind_name(k);
}

static void battery(memkind_t pk)
{
    printf("  check_available=%d\n", memkind_check_available(pk));
    static const size_t sizes[] = {1, 16, 100, 4096, 65536, 1 * MiB, 3 * MiB};
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        char *p = memkind_malloc(pk, n);
        printf("  malloc %zu ok=%d", n, p != NULL);
        if (p) {
            fill(p, n, (unsigned)i);
            printf(" data=%d usable_ge=%d usable_null_ge=%d detect=%s", check_fill(p, n, (unsigned)i),
                   memkind_malloc_usable_size(pk, p) >= n,
                   memkind_malloc_usable_size(NULL, p) >= n, kname(memkind_detect_kind(p), pk));
            p = memkind_realloc(pk, p, 2 * n + 10);
            printf(" realloc_ok=%d kept=%d", p != NULL, p && check_fill(p, n, (unsigned)i));
            p = memkind_realloc(NULL, p, n / 2 + 1);
            printf(" shrink_ok=%d", p != NULL);
            memkind_free(i % 2 ? NULL : pk, p);
        }
        printf("\n");
    }
    void *c = memkind_calloc(pk, 1000, 8);
    printf("  calloc ok=%d zero=%d\n", c != NULL, c && all_zero(c, 8000));
    memkind_free(pk, c);
    void *a = NULL;
    int rc = memkind_posix_memalign(pk, &a, 2 * MiB, 100);
    printf("  posix_memalign 2M rc=%d aligned=%d\n", rc, a && aligned(a, 2 * MiB));
    memkind_free(pk, a);
    errno = 0;
    void *z = memkind_malloc(pk, 0);
    printf("  malloc 0 null=%d\n", z == NULL);
}

int main(int argc, char **argv)
{
    setup_stdout();
    const char *dir = argc > 1 ? argv[1] : "/tmp";

    printf("check_dax_path plain_dir rc=%d\n", memkind_check_dax_path(dir));
    printf("check_dax_path missing rc=%d\n", memkind_check_dax_path("/nonexistent/memkind-diff"));
    printf("check_dax_path file rc=%d\n", memkind_check_dax_path("/etc/passwd"));

    memkind_t pk = NULL;
    printf("create_pmem too_small rc=%d\n", memkind_create_pmem(dir, MEMKIND_PMEM_MIN_SIZE - 1, &pk));
    printf("create_pmem one rc=%d\n", memkind_create_pmem(dir, 1, &pk));
    printf("create_pmem missing_dir rc=%d\n", memkind_create_pmem("/nonexistent/memkind-diff", 0, &pk));
    printf("create_pmem file_as_dir rc=%d\n", memkind_create_pmem("/etc/passwd", 0, &pk));
    printf("create_pmem proc rc=%d\n", memkind_create_pmem("/proc", 0, &pk));
    memkind_t byp = (memkind_t)0x1;
    printf("partition %d before rc=%d\n", MEMKIND_NUM_BASE_KIND,
           memkind_get_kind_by_partition(MEMKIND_NUM_BASE_KIND, &byp));

    /* Unlimited kind: the battery. */
    pk = NULL;
    int rc = memkind_create_pmem(dir, 0, &pk);
    printf("create_pmem unlimited rc=%d capacity=%s\n", rc, rc ? "-" : sign_class(memkind_get_capacity(pk)));
    if (rc == 0) {
        battery(pk);
        printf("  destroy rc=%d\n", memkind_destroy_kind(pk));
    }

    /* Limited kind: capacity is the rounded max; filling stops with ENOMEM, frees recover. */
    size_t max = MEMKIND_PMEM_MIN_SIZE + 1;
    rc = memkind_create_pmem(dir, max, &pk);
    printf("create_pmem 16M+1 rc=%d capacity_is_18M=%d\n", rc,
           rc == 0 && memkind_get_capacity(pk) == (ssize_t)(18 * MiB));
    if (rc == 0) {
        int n = 0;
        void *blocks[64];
        errno = 0;
        while (n < 64 && (blocks[n] = memkind_malloc(pk, 1 * MiB)) != NULL) {
            memset(blocks[n], n, 1 * MiB);
            n++;
        }
        printf("  fill 1MiB: stopped_before_64=%d at_least_8=%d errno=%s\n", n < 64, n >= 8,
               errno_name(errno));
        int ok = 1;
        for (int i = 0; i < n; i++)
            ok &= ((unsigned char *)blocks[i])[1000] == (unsigned char)i;
        printf("  blocks intact=%d\n", ok);
        errno = 0;
        void *huge = memkind_malloc(pk, 64 * MiB);
        printf("  64MiB null=%d errno=%s\n", huge == NULL, errno_name(errno));
        for (int i = 0; i < n; i++)
            memkind_free(pk, blocks[i]);
        int m = 0;
        while (m < 64 && (blocks[m] = memkind_malloc(pk, 1 * MiB)) != NULL)
            m++;
        printf("  refill same_count=%d\n", m == n);
        for (int i = 0; i < m; i++)
            memkind_free(NULL, blocks[i]);
        byp = (memkind_t)0x1;
        int prc = memkind_get_kind_by_partition(MEMKIND_NUM_BASE_KIND, &byp);
        printf("  partition %d rc=%d kind=%s\n", MEMKIND_NUM_BASE_KIND, prc, kname(byp, pk));
        printf("  destroy rc=%d\n", memkind_destroy_kind(pk));
        byp = (memkind_t)0x1;
        prc = memkind_get_kind_by_partition(MEMKIND_NUM_BASE_KIND, &byp);
        printf("  after destroy partition rc=%d kind=%s\n", prc, kname(byp, pk));
    }

    /* Configs. */
    struct memkind_config *cfg = memkind_config_new();
    printf("config_new ok=%d\n", cfg != NULL);
    memkind_config_set_path(cfg, dir);
    memkind_config_set_size(cfg, 100);
    printf("config small rc=%d\n", memkind_create_pmem_with_config(cfg, &pk));
    memkind_config_set_size(cfg, 0);
    memkind_config_set_memory_usage_policy(cfg, (memkind_mem_usage_policy)5);
    printf("config bad_policy rc=%d\n", memkind_create_pmem_with_config(cfg, &pk));
    for (int pol = 0; pol < 2; pol++) {
        memkind_config_set_memory_usage_policy(cfg, (memkind_mem_usage_policy)pol);
        memkind_config_set_size(cfg, pol ? 32 * MiB : 0);
        pk = NULL;
        rc = memkind_create_pmem_with_config(cfg, &pk);
        printf("config policy=%d rc=%d\n", pol, rc);
        if (rc == 0) {
            void *p = memkind_calloc(pk, 10, 10);
            printf("  calloc ok=%d zero=%d\n", p != NULL, p && all_zero(p, 100));
            memkind_free(pk, p);
            void *b = memkind_malloc(pk, 4 * MiB);
            printf("  malloc 4M ok=%d\n", b != NULL);
            memkind_free(pk, b);
            printf("  destroy rc=%d\n", memkind_destroy_kind(pk));
        }
    }
    memkind_config_set_path(cfg, "/nonexistent/memkind-diff");
    printf("config missing_dir rc=%d\n", memkind_create_pmem_with_config(cfg, &pk));
    memkind_config_delete(cfg);

    /* Several kinds at once (1.14 manages about a dozen). */
    memkind_t ks[8];
    int made = 0;
    for (int i = 0; i < 8; i++)
        made += memkind_create_pmem(dir, 0, &ks[i]) == 0;
    printf("8 kinds made=%d\n", made);
    int good = 1;
    char *ps[8];
    for (int i = 0; i < made; i++) {
        ps[i] = memkind_malloc(ks[i], 1000);
        good &= ps[i] != NULL && memkind_detect_kind(ps[i]) == ks[i];
        if (ps[i])
            memset(ps[i], i + 1, 1000);
    }
    for (int i = 0; i < made; i++)
        good &= ps[i] && ps[i][999] == i + 1;
    printf("  alloc+detect+data ok=%d\n", good);
    for (int i = 0; i < made; i++) {
        memkind_free(ks[i], ps[i]);
        good &= memkind_destroy_kind(ks[i]) == 0;
    }
    printf("  destroyed ok=%d\n", good);
    printf("DONE\n");
    return 0;
}
