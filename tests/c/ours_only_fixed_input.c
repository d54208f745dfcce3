/* Run against ours only: memkind_create_fixed input checks where 1.14 accepts anything
 * (returns 0): a NULL address, a range that wraps around the address space, a buffer
 * overlapping a live fixed kind's (1.14 then hands the same bytes to both kinds), a NULL out
 * pointer (1.14 writes through it); and memkind_get_stat with a NULL value (1.14 writes
 * through it). Ours: MEMKIND_ERROR_INVALID, nothing created. Exit 0 when all hold.
 */
#include "common.h"
#include <stdint.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

int main(void)
{
    setup_stdout();
    int bad = 0;
    memkind_t k = (memkind_t)0x1;
    char *buf = malloc(32 * MiB);
#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            printf("FAIL: " __VA_ARGS__);                                                      \
            printf("\n");                                                                      \
            bad = 1;                                                                           \
        }                                                                                      \
    } while (0)
    int rc = memkind_create_fixed(NULL, 16 * MiB, &k);
    CHECK(rc == MEMKIND_ERROR_INVALID && k == (memkind_t)0x1, "NULL addr rc=%d", rc);
    rc = memkind_create_fixed((void *)(UINTPTR_MAX - 4095), 8192, &k);
    CHECK(rc == MEMKIND_ERROR_INVALID, "wrapping range rc=%d", rc);
    rc = memkind_create_fixed(buf, 16 * MiB, NULL);
    CHECK(rc == MEMKIND_ERROR_INVALID, "NULL out rc=%d", rc);
    memkind_t a = NULL, b = NULL;
    rc = memkind_create_fixed(buf, 16 * MiB, &a);
    CHECK(rc == 0, "first rc=%d", rc);
    rc = memkind_create_fixed(buf + 4096, 4 * MiB, &b);
    CHECK(rc == MEMKIND_ERROR_INVALID && b == NULL, "inner overlap rc=%d", rc);
    rc = memkind_create_fixed(buf + 16 * MiB - 1, 4 * MiB, &b);
    CHECK(rc == MEMKIND_ERROR_INVALID && b == NULL, "tail overlap rc=%d", rc);
    rc = memkind_create_fixed(buf + 16 * MiB, 4 * MiB, &b);
    CHECK(rc == 0, "adjacent rc=%d", rc);
    /* The failed creations left no kind behind: partitions 26.. hold exactly a and b. */
    int dyn = 0;
    for (int i = MEMKIND_NUM_BASE_KIND; i < MEMKIND_NUM_BASE_KIND + 16; i++) {
        memkind_t x = NULL;
        if (memkind_get_kind_by_partition(i, &x) == 0)
            dyn++;
    }
    CHECK(dyn == 2, "dynamic kinds alive: %d", dyn);
    CHECK(memkind_destroy_kind(a) == 0, "destroy a");
    /* Its range is free again. */
    rc = memkind_create_fixed(buf + 4096, 4 * MiB, &a);
    CHECK(rc == 0, "reuse after destroy rc=%d", rc);
    void *p = memkind_malloc(a, 100);
    CHECK(p && memkind_detect_kind(p) == a, "reused kind allocates");
    memkind_free(NULL, p);
    CHECK(memkind_destroy_kind(a) == 0 && memkind_destroy_kind(b) == 0, "destroy");
    CHECK(memkind_get_stat(NULL, MEMKIND_STAT_TYPE_RESIDENT, NULL) == MEMKIND_ERROR_INVALID,
          "get_stat NULL value");
    CHECK(memkind_get_stat(MEMKIND_REGULAR, MEMKIND_STAT_TYPE_ACTIVE, NULL) ==
              MEMKIND_ERROR_INVALID,
          "get_stat NULL value (kind)");
    /* A fixed kind carved out of memkind's own memory: its pointers belong to it, the rest of
     * the enclosing block still to its kind. */
    char *host = memkind_malloc(MEMKIND_REGULAR, 8 * MiB);
    memkind_t f = NULL;
    rc = memkind_create_fixed(host + 2 * MiB, 4 * MiB, &f);
    CHECK(rc == 0, "fixed in REGULAR memory rc=%d", rc);
    if (rc == 0) {
        void *q = memkind_malloc(f, 5000);
        CHECK(memkind_detect_kind(q) == f, "owner of fixed-in-regular block");
        CHECK(memkind_detect_kind(host) == MEMKIND_REGULAR, "owner of host block");
        CHECK(memkind_detect_kind(host + 7 * MiB) == MEMKIND_REGULAR, "owner of host tail");
        memkind_free(NULL, q);
        CHECK(memkind_destroy_kind(f) == 0, "destroy f");
    }
    memkind_free(NULL, host);
    free(buf);
    printf(bad ? "FAILED\n" : "OK\n");
    return bad;
}
