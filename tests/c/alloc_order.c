/* Order of consecutive small allocations from a fresh kind: memkind 1.14 hands out the regions
 * of a fresh slab lowest first (jemalloc's tcache for static kinds, the arena's bin for PMEM), so
 * two memkind_malloc(kind, n) in a row are adjacent and ascending (p2 - p1 == n for class
 * sizes). Prints the deltas of four consecutive allocations per size, per kind.
 * A static kind's very first allocation in a thread is served apart in 1.14 (its jemalloc's
 * first tcache fill: the second block lands 100 regions further), an artifact not worth
 * copying: static kinds are warmed up with one 8-byte block (a class not measured) first.
 * usage: alloc_order <writable dir for a PMEM kind>
 */
#include "common.h"

static void deltas(const char *name, memkind_t k, int warm)
{
    static const size_t sizes[] = {32, 16, 48, 64, 128, 256, 1024, 4096};
    printf("%s check_available=%d\n", name, memkind_check_available(k));
    void *w = warm ? memkind_malloc(k, 8) : NULL;
    if (warm)
        printf("  warm-up 8 ok=%d\n", w != NULL);
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *p[4];
        for (int j = 0; j < 4; j++)
            p[j] = memkind_malloc(k, sizes[i]);
        printf("  size %zu:", sizes[i]);
        for (int j = 1; j < 4; j++) {
            if (p[j] && p[j - 1])
                printf(" %td", p[j] - p[j - 1]);
            else
                printf(" null");
        }
        printf("\n");
        for (int j = 0; j < 4; j++)
            memkind_free(k, p[j]);
    }
    memkind_free(k, w);
}

int main(int argc, char **argv)
{
    setup_stdout();
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    deltas("MEMKIND_REGULAR", MEMKIND_REGULAR, 1);
    deltas("MEMKIND_INTERLEAVE", MEMKIND_INTERLEAVE, 1);
    deltas("MEMKIND_HIGHEST_CAPACITY", MEMKIND_HIGHEST_CAPACITY, 1);
    memkind_t pk = NULL;
    int rc = memkind_create_pmem(dir, 0, &pk);
    printf("create_pmem rc=%d\n", rc);
    if (rc == 0) {
        deltas("PMEM", pk, 0);
        printf("destroy rc=%d\n", memkind_destroy_kind(pk));
    }
    /* A second PMEM kind, fresh again, with a size limit. */
    rc = memkind_create_pmem(dir, 32 * MiB, &pk);
    printf("create_pmem 32M rc=%d\n", rc);
    if (rc == 0) {
        deltas("PMEM 32M", pk, 0);
        printf("destroy rc=%d\n", memkind_destroy_kind(pk));
    }
    return 0;
}
