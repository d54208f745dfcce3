/* OURS ONLY (memkind 1.14 dereferences NULL, bogus or deleted builders, memories, kinds, names
 * and values, and miscounts some frees, failed reallocs and posix_memalign).
 * Correct behaviour of memkind_memtier.h on bad input:
 *   - NULL / bogus / deleted builder → -1 or NULL, delete ignored;
 *   - NULL / bogus / deleted memory → NULL + EINVAL (posix_memalign: EINVAL), delete ignored;
 *   - a deleted builder or memory stays invalid after new ones are created (its slot is not
 *     reused at once: 1.14 hands the same address to the next one);
 *   - ctl_set with a NULL name or value → -1; memtier_kind_* with a NULL kind → NULL / 0;
 *   - foreign pointers: usable_size 0, free ignored, realloc NULL;
 *   - counters: a block is uncounted from the kind that owns it, a failed realloc or
 *     posix_memalign changes nothing.
 * Exit 0 when all hold, 1 otherwise (1.14: 1 at the first check, or a crash).
 */
#include "common.h"
#include <memkind_memtier.h>

static int fails;

static void check(const char *what, int ok)
{
    printf("%s %s\n", what, ok ? "ok" : "FAIL");
    fails += !ok;
}

static size_t asz(memkind_t k)
{
    return memtier_kind_allocated_size(k);
}

int main(void)
{
    setup_stdout();
    float f = 0.5f;
    size_t v = 100;
    char stack[256] = {0};
    static char stat[256];

    struct memtier_builder *b = memtier_builder_new(MEMTIER_POLICY_STATIC_RATIO);
    check("add_tier", memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1) == 0);

    struct memtier_builder *bad_b[] = {NULL, (struct memtier_builder *)stack,
                                       (struct memtier_builder *)stat,
                                       (struct memtier_builder *)(uintptr_t)16};
    for (unsigned i = 0; i < sizeof bad_b / sizeof bad_b[0]; i++) {
        struct memtier_builder *x = bad_b[i];
        check("bad builder add_tier", memtier_builder_add_tier(x, MEMKIND_DEFAULT, 1) == -1);
        check("bad builder construct", memtier_builder_construct_memtier_memory(x) == NULL);
        check("bad builder ctl_set",
              memtier_ctl_set(x, "policy.dynamic_threshold.trigger", &f) == -1);
        memtier_builder_delete(x);
    }

    struct memtier_memory *m = memtier_builder_construct_memtier_memory(b);
    check("construct", m != NULL);
    struct memtier_memory *bad_m[] = {NULL, (struct memtier_memory *)stack,
                                      (struct memtier_memory *)b,
                                      (struct memtier_memory *)(uintptr_t)16};
    for (unsigned i = 0; i < sizeof bad_m / sizeof bad_m[0]; i++) {
        struct memtier_memory *x = bad_m[i];
        errno = 0;
        check("bad memory malloc", memtier_malloc(x, 16) == NULL && errno == EINVAL);
        errno = 0;
        check("bad memory calloc", memtier_calloc(x, 1, 16) == NULL && errno == EINVAL);
        errno = 0;
        check("bad memory realloc", memtier_realloc(x, NULL, 16) == NULL && errno == EINVAL);
        void *p = NULL;
        check("bad memory posix_memalign", memtier_posix_memalign(x, &p, 64, 16) == EINVAL);
        memtier_delete_memtier_memory(x);
    }
    check("builder is not a memory", memtier_builder_construct_memtier_memory(
                                         (struct memtier_builder *)m) == NULL);

    struct memtier_builder *d = memtier_builder_new(MEMTIER_POLICY_DYNAMIC_THRESHOLD);
    memtier_builder_add_tier(d, MEMKIND_DEFAULT, 1);
    memtier_builder_add_tier(d, MEMKIND_REGULAR, 1);
    check("ctl_set NULL name", memtier_ctl_set(d, NULL, &v) == -1);
    check("ctl_set NULL value",
          memtier_ctl_set(d, "policy.dynamic_threshold.thresholds[0].val", NULL) == -1);
    check("ctl_set NULL float", memtier_ctl_set(d, "policy.dynamic_threshold.degree", NULL) == -1);
    memtier_builder_delete(d);
    check("deleted builder", memtier_builder_add_tier(d, MEMKIND_REGULAR, 1) == -1);
    memtier_builder_delete(d);
    /* New builders do not bring the deleted handle back. */
    struct memtier_builder *fresh[8];
    int distinct = 1;
    for (int i = 0; i < 8; i++) {
        fresh[i] = memtier_builder_new(MEMTIER_POLICY_DYNAMIC_THRESHOLD);
        distinct &= fresh[i] != NULL && fresh[i] != d;
    }
    check("new builders get new handles", distinct);
    check("deleted builder after new ones",
          memtier_builder_add_tier(d, MEMKIND_REGULAR, 1) == -1 &&
              memtier_builder_construct_memtier_memory(d) == NULL);
    for (int i = 0; i < 8; i++)
        memtier_builder_delete(fresh[i]);

    errno = 0;
    check("kind_malloc NULL kind", memtier_kind_malloc(NULL, 16) == NULL);
    check("kind_calloc NULL kind", memtier_kind_calloc(NULL, 1, 16) == NULL);
    check("kind_realloc NULL kind NULL ptr", memtier_kind_realloc(NULL, NULL, 16) == NULL);
    void *p = NULL;
    check("kind_posix_memalign NULL kind",
          memtier_kind_posix_memalign(NULL, &p, 64, 16) == EINVAL);
    check("kind_posix_memalign NULL memptr",
          memtier_kind_posix_memalign(MEMKIND_REGULAR, NULL, 64, 16) == EINVAL);
    check("allocated_size NULL kind", asz(NULL) == 0);
    check("allocated_size bogus kind", asz((memkind_t)stack) == 0);

    /* Foreign pointers. */
    check("usable_size foreign", memtier_usable_size(stack + 8) == 0);
    memtier_free(stack + 8);
    memtier_kind_free(MEMKIND_REGULAR, stat);
    errno = 0;
    check("realloc foreign", memtier_realloc(m, stack, 64) == NULL && errno == EINVAL);
    check("counters untouched by foreign pointers",
          asz(MEMKIND_DEFAULT) == 0 && asz(MEMKIND_REGULAR) == 0);

    /* Counting. */
    void *r = memtier_kind_malloc(MEMKIND_REGULAR, 1000);
    memtier_kind_free(MEMKIND_DEFAULT, r); /* named wrong: charged to the owner */
    check("free charged to the owner", asz(MEMKIND_DEFAULT) == 0 && asz(MEMKIND_REGULAR) == 0);
    r = memtier_kind_malloc(MEMKIND_REGULAR, 1000);
    check("failed realloc keeps the block", memtier_kind_realloc(MEMKIND_REGULAR, r,
                                                                 SIZE_MAX / 2) == NULL);
    check("failed realloc keeps the count", asz(MEMKIND_REGULAR) == 1024);
    void *keep = memtier_kind_malloc(MEMKIND_DEFAULT, 1000);
    void *slot = keep;
    check("posix_memalign EINVAL", memtier_kind_posix_memalign(MEMKIND_DEFAULT, &slot, 3, 64) ==
                                       EINVAL);
    check("posix_memalign EINVAL counts nothing", asz(MEMKIND_DEFAULT) == 1024);
    slot = keep;
    check("posix_memalign ENOMEM",
          memtier_kind_posix_memalign(MEMKIND_DEFAULT, &slot, 64, SIZE_MAX / 2) == ENOMEM);
    check("posix_memalign ENOMEM counts nothing", asz(MEMKIND_DEFAULT) == 1024);
    memtier_free(keep);
    memtier_free(r);
    check("all freed", asz(MEMKIND_DEFAULT) == 0 && asz(MEMKIND_REGULAR) == 0);

    memtier_delete_memtier_memory(m);
    errno = 0;
    check("deleted memory", memtier_malloc(m, 16) == NULL && errno == EINVAL);
    memtier_delete_memtier_memory(m);
    /* A new memory (1.14 hands the deleted address to the next construct, and the old handle
     * works again), then several: the deleted handle stays refused. */
    struct memtier_memory *m2 = memtier_builder_construct_memtier_memory(b);
    check("new memory gets a new handle", m2 != NULL && m2 != m);
    errno = 0;
    check("deleted memory after a construct", memtier_malloc(m, 16) == NULL && errno == EINVAL);
    struct memtier_memory *more[8];
    int fresh_m = 1;
    for (int i = 0; i < 8; i++) {
        more[i] = memtier_builder_construct_memtier_memory(b);
        fresh_m &= more[i] != NULL && more[i] != m;
    }
    check("new memories get new handles", fresh_m);
    errno = 0;
    check("deleted memory after constructs", memtier_calloc(m, 1, 16) == NULL && errno == EINVAL);
    for (int i = 0; i < 8; i++)
        memtier_delete_memtier_memory(more[i]);
    memtier_delete_memtier_memory(m2);
    memtier_builder_delete(b);
    printf("fails=%d\n", fails);
    return fails ? 1 : 0;
}
