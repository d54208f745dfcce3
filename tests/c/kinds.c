/* Every static kind (26) and the 3 deprecated GBTLB kinds: availability, capacity sign and, for
 * available kinds, an allocation battery (malloc/calloc/realloc/posix_memalign/usable_size/
 * detect_kind/free with and without the kind).
 *
 * usage: kinds [avail]   "avail" prints availability, capacity and a 16-byte malloc probe only.
 */
#include "common.h"

static void probe_malloc(memkind_t k)
{
    errno = 0;
    void *p = memkind_malloc(k, 16);
    int e = errno;
    printf("  probe malloc16 null=%d errno=%s\n", p == NULL, p ? "-" : errno_name(e));
    if (p)
        memkind_free(k, p);
}

static void battery(memkind_t k)
{
    static const size_t sizes[] = {16, 4096, 1 * MiB};
    for (unsigned i = 0; i < 3; i++) {
        size_t n = sizes[i];
        void *p = memkind_malloc(k, n);
        printf("  malloc %zu ok=%d", n, p != NULL);
        if (p) {
            fill(p, n, i + 1);
            size_t u = memkind_malloc_usable_size(k, p);
            size_t un = memkind_malloc_usable_size(NULL, p);
            printf(" data=%d usable_ge=%d usable_null_eq=%d detect=%s", check_fill(p, n, i + 1),
                   u >= n, un == u, kind_name(memkind_detect_kind(p)));
            if (i == 1)
                memkind_free(NULL, p); /* kind found from the pointer */
            else
                memkind_free(k, p);
        }
        printf("\n");
    }

    /* calloc after a dirty block of the same size was freed: must still be zeroed. */
    void *d = memkind_malloc(k, 4000);
    if (d) {
        memset(d, 0xAB, 4000);
        memkind_free(k, d);
    }
    void *c = memkind_calloc(k, 100, 40);
    printf("  calloc 100x40 ok=%d", c != NULL);
    if (c) {
        printf(" zero=%d usable_ge=%d detect=%s", all_zero(c, 4000),
               memkind_malloc_usable_size(k, c) >= 4000, kind_name(memkind_detect_kind(c)));
        memkind_free(k, c);
    }
    printf("\n");
    c = memkind_calloc(k, 1, 3 * MiB);
    printf("  calloc 1x3MiB ok=%d", c != NULL);
    if (c) {
        printf(" zero=%d", all_zero(c, 3 * MiB));
        memkind_free(k, c);
    }
    printf("\n");

    /* realloc grow then shrink keeps the data prefix. */
    void *r = memkind_malloc(k, 64);
    printf("  realloc ok=%d", r != NULL);
    if (r) {
        fill(r, 64, 9);
        void *g = memkind_realloc(k, r, 200000);
        printf(" grow_ok=%d", g != NULL);
        if (g) {
            printf(" grow_keep=%d usable_ge=%d", check_fill(g, 64, 9),
                   memkind_malloc_usable_size(k, g) >= 200000);
            memset((char *)g + 64, 1, 200000 - 64);
            void *s = memkind_realloc(k, g, 32);
            printf(" shrink_ok=%d", s != NULL);
            if (s) {
                printf(" shrink_keep=%d", check_fill(s, 32, 9));
                void *s2 = memkind_realloc(NULL, s, 5000); /* NULL kind: found from pointer */
                printf(" nullkind_ok=%d", s2 != NULL);
                if (s2) {
                    printf(" nullkind_keep=%d detect=%s", check_fill(s2, 32, 9),
                           kind_name(memkind_detect_kind(s2)));
                    memkind_free(k, s2);
                } else {
                    memkind_free(k, s);
                }
            } else {
                memkind_free(k, g);
            }
        } else {
            memkind_free(k, r);
        }
    }
    printf("\n");

    static const size_t aligns[] = {64, 4096, 2 * MiB};
    for (unsigned i = 0; i < 3; i++) {
        void *p = (void *)0x1;
        int rc = memkind_posix_memalign(k, &p, aligns[i], 100);
        printf("  posix_memalign align=%zu rc=%s", aligns[i], errno_name(rc));
        if (rc == 0) {
            printf(" nonnull=%d aligned=%d usable_ge=%d", p != NULL, aligned(p, aligns[i]),
                   memkind_malloc_usable_size(k, p) >= 100);
            fill(p, 100, 3);
            printf(" data=%d detect=%s", check_fill(p, 100, 3), kind_name(memkind_detect_kind(p)));
            memkind_free(i == 0 ? NULL : k, p);
        }
        printf("\n");
    }

    /* memkind_free of NULL is a no-op, with and without kind. */
    memkind_free(k, NULL);
    memkind_free(NULL, NULL);
    printf("  free_null ok\n");
}

/* MEMKIND_HBW_GBTLB / MEMKIND_HBW_PREFERRED_GBTLB check 2 MiB hugepages on the kind's HBW
 * nodemask. When those nodes cannot be determined (HBW unavailable, bad MEMKIND_HBW_NODES),
 * 1.14 ignores the error and reads an uninitialised nodemask from its stack: the result (0 or
 * -18) depends on what ran before, so it is not compared. Allocations fail (ENOMEM) either way. */
static int gbtlb_undefined(memkind_t k)
{
    if (k == MEMKIND_HBW_GBTLB)
        return memkind_check_available(MEMKIND_HBW) != 0;
    if (k == MEMKIND_HBW_PREFERRED_GBTLB)
        return memkind_check_available(MEMKIND_HBW_PREFERRED) != 0;
    return 0;
}

int main(int argc, char **argv)
{
    setup_stdout();
    int avail_only = argc > 1 && strcmp(argv[1], "avail") == 0;
    for (int i = 0; i < NUM_KINDS; i++) {
        memkind_t k = *ALL_KINDS[i].kind;
        int rc = memkind_check_available(k);
        ssize_t cap = memkind_get_capacity(k);
        if (gbtlb_undefined(k)) {
            printf("KIND %s avail=undefined cap=%s\n", ALL_KINDS[i].name, sign_class(cap));
            probe_malloc(k);
            continue;
        }
        printf("KIND %s avail=%d cap=%s\n", ALL_KINDS[i].name, rc, sign_class(cap));
        if (avail_only || rc != 0)
            probe_malloc(k);
        else
            battery(k);
    }
    printf("DONE\n");
    return 0;
}
