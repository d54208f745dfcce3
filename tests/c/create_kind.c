/* memkind_create_kind over every (memtype, policy, flags) combination, plus invalid ones;
 * memkind_get_kind_by_partition (deprecated) for partitions -1..27 and a few far ones.
 */
#include "common.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static const char *memtype_name(unsigned m)
{
    switch (m) {
    case 0: return "0";
    case MEMKIND_MEMTYPE_DEFAULT: return "DEFAULT";
    case MEMKIND_MEMTYPE_HIGH_BANDWIDTH: return "HBW";
    case MEMKIND_MEMTYPE_DEFAULT | MEMKIND_MEMTYPE_HIGH_BANDWIDTH: return "DEFAULT|HBW";
    default: return "bogus";
    }
}

static const char *policy_name(int p)
{
    switch (p) {
    case MEMKIND_POLICY_BIND_LOCAL: return "BIND_LOCAL";
    case MEMKIND_POLICY_BIND_ALL: return "BIND_ALL";
    case MEMKIND_POLICY_PREFERRED_LOCAL: return "PREFERRED_LOCAL";
    case MEMKIND_POLICY_INTERLEAVE_LOCAL: return "INTERLEAVE_LOCAL";
    case MEMKIND_POLICY_INTERLEAVE_ALL: return "INTERLEAVE_ALL";
    case MEMKIND_POLICY_MAX_VALUE: return "MAX_VALUE";
    default: return "bogus";
    }
}

int main(void)
{
    setup_stdout();
    static const unsigned memtypes[] = {0, MEMKIND_MEMTYPE_DEFAULT, MEMKIND_MEMTYPE_HIGH_BANDWIDTH,
                                        MEMKIND_MEMTYPE_DEFAULT | MEMKIND_MEMTYPE_HIGH_BANDWIDTH,
                                        4};
    static const int policies[] = {0, 1, 2, 3, 4, 5, -1, 100};
    static const unsigned long long flags[] = {0, MEMKIND_MASK_PAGE_SIZE_2MB, 1, 4, 2, 0x80000000u};

    for (unsigned m = 0; m < sizeof memtypes / sizeof memtypes[0]; m++)
        for (unsigned p = 0; p < sizeof policies / sizeof policies[0]; p++)
            for (unsigned f = 0; f < sizeof flags / sizeof flags[0]; f++) {
                memkind_t k = (memkind_t)0x1234;
                int rc = memkind_create_kind((memkind_memtype_t)memtypes[m],
                                             (memkind_policy_t)policies[p],
                                             (memkind_bits_t)flags[f], &k);
                printf("create memtype=%s(%u) policy=%s(%d) flags=%llu rc=%d kind=%s\n",
                       memtype_name(memtypes[m]), memtypes[m], policy_name(policies[p]),
                       policies[p], flags[f], rc,
                       k == (memkind_t)0x1234 ? "untouched" : kind_name(k));
                if (rc == 0 && k && k != (memkind_t)0x1234) {
                    void *x = memkind_malloc(k, 128);
                    printf("  malloc_ok=%d\n", x != NULL);
                    if (x)
                        memkind_free(k, x);
                }
            }

    /* NULL out-pointer. */
    printf("create null_out rc=%d\n",
           memkind_create_kind(MEMKIND_MEMTYPE_DEFAULT, MEMKIND_POLICY_PREFERRED_LOCAL, 0, NULL));

    static const int far[] = {-100, -1, 28, 100, 511, 512, 513, 100000};
    for (int part = 0; part <= 27; part++) {
        memkind_t k = (memkind_t)0x1234;
        int rc = memkind_get_kind_by_partition(part, &k);
        printf("partition %d rc=%d kind=%s\n", part, rc,
               k == (memkind_t)0x1234 ? "untouched" : kind_name(k));
    }
    for (unsigned i = 0; i < sizeof far / sizeof far[0]; i++) {
        memkind_t k = (memkind_t)0x1234;
        int rc = memkind_get_kind_by_partition(far[i], &k);
        printf("partition %d rc=%d kind=%s\n", far[i], rc,
               k == (memkind_t)0x1234 ? "untouched" : kind_name(k));
    }
    printf("DONE\n");
    return 0;
}
