/* Fixed kinds (memkind_create_fixed): allocations lie inside the caller's buffer, exhaustion
 * gives NULL + ENOMEM, freed space is reused, detect/usable_size/realloc/calloc, statistics of
 * the kind, small buffers, several kinds side by side, destroy.
 */
#include "common.h"

static int inside(const void *p, size_t n, const void *buf, size_t size)
{
    return p && (const char *)p >= (const char *)buf &&
           (const char *)p + n <= (const char *)buf + size;
}

static const char *kn(memkind_t k, memkind_t a, memkind_t b)
{
    return k == a ? "<fixed A>" : k == b ? "<fixed B>" : kind_name(k);
}

static void battery(const char *what, char *buf, size_t size)
{
    memkind_t k = NULL;
    int rc = memkind_create_fixed(buf, size, &k);
    printf("%s: create rc=%d\n", what, rc);
    if (rc)
        return;
    printf("  check_available=%d capacity_is_size=%d\n", memkind_check_available(k),
           memkind_get_capacity(k) == (ssize_t)size);
    char *p = memkind_malloc(k, 4096);
    printf("  malloc 4096 inside=%d detect=%s usable_ge=%d\n", inside(p, 4096, buf, size),
           p ? kn(memkind_detect_kind(p), k, NULL) : "-",
           p && memkind_malloc_usable_size(k, p) >= 4096);
    if (p) {
        fill(p, 4096, 1);
        char *q = memkind_realloc(k, p, 100000);
        printf("  realloc 100000 inside=%d data=%d\n", inside(q, 100000, buf, size),
               q && check_fill(q, 4096, 1));
        memkind_free(NULL, q ? q : p);
    }
    memset(buf + size / 2, 0xab, size / 4); /* dirty part of the buffer */
    int zero_ok = 1, c_inside = 1;
    for (int i = 0; i < 64; i++) {
        char *c = memkind_calloc(k, 1, 20000);
        if (!c)
            break;
        zero_ok &= all_zero(c, 20000);
        c_inside &= inside(c, 20000, buf, size);
        memkind_free(k, c);
    }
    printf("  calloc zeroed=%d inside=%d\n", zero_ok, c_inside);

    /* Exhaust with 1 MiB blocks. */
    enum { MAXB = 256 };
    static void *b[MAXB];
    int n = 0, all_in = 1;
    errno = 0;
    while (n < MAXB && (b[n] = memkind_malloc(k, MiB)) != NULL) {
        all_in &= inside(b[n], MiB, buf, size);
        memset(b[n], n, MiB);
        n++;
    }
    printf("  1MiB blocks: stopped=%d errno=%s all_inside=%d at_most_size=%d\n", n < MAXB,
           errno_name(errno), all_in, (size_t)n * MiB <= size);
    memkind_update_cached_stats();
    size_t al = 0;
    int src = memkind_get_stat(k, MEMKIND_STAT_TYPE_ALLOCATED, &al);
    printf("  get_stat allocated rc=%d ge_blocks=%d\n", src, al >= (size_t)n * MiB);
    for (int i = 0; i < n; i++)
        memkind_free(k, b[i]);
    void *again = memkind_malloc(k, MiB);
    printf("  after free: malloc 1MiB ok=%d inside=%d\n", again != NULL,
           inside(again, MiB, buf, size));
    memkind_free(k, again);
    printf("  destroy rc=%d\n", memkind_destroy_kind(k));
}

static void tiny(size_t size)
{
    static char buf[2 * 1024 * 1024 + 64] __attribute__((aligned(4096)));
    memkind_t k = NULL;
    int rc = memkind_create_fixed(buf, size, &k);
    printf("tiny %zu: create rc=%d", size, rc);
    if (rc == 0) {
        errno = 0;
        void *p = memkind_malloc(k, 100);
        int e = errno;
        printf(" capacity_is_size=%d malloc100 ok=%d inside=%d errno=%s", memkind_get_capacity(k) ==
               (ssize_t)size, p != NULL, p ? inside(p, 100, buf, size) : 0, p ? "-" : errno_name(e));
        memkind_free(k, p);
        printf(" destroy=%d", memkind_destroy_kind(k));
    }
    printf("\n");
}

int main(void)
{
    setup_stdout();
    size_t fsz = 32 * MiB;
    void *buf = NULL;
    if (posix_memalign(&buf, 2 * MiB, fsz + 4096))
        return 1;
    battery("aligned 32MiB", buf, fsz);
    battery("unaligned 16MiB+3", (char *)buf + 3, 16 * MiB);
    battery("page 8MiB", (char *)buf + 4096, 8 * MiB);
    free(buf);

    tiny(0);
    tiny(4096);
    tiny(1 * MiB);

    /* Two kinds in disjoint halves of one buffer. */
    char *two = malloc(16 * MiB);
    memkind_t a = NULL, b = NULL;
    printf("two: create A rc=%d B rc=%d\n", memkind_create_fixed(two, 8 * MiB, &a),
           memkind_create_fixed(two + 8 * MiB, 8 * MiB, &b));
    int ok = 1;
    for (int i = 0; i < 100; i++) {
        char *x = memkind_malloc(a, 1000 + i), *y = memkind_malloc(b, 1000 + i);
        ok &= inside(x, 1000, two, 8 * MiB) && inside(y, 1000, two + 8 * MiB, 8 * MiB);
        ok &= memkind_detect_kind(x) == a && memkind_detect_kind(y) == b;
        memkind_free(NULL, x);
        memkind_free(NULL, y);
    }
    printf("two: own halves and owners=%d\n", ok);
    char *y = memkind_malloc(b, 64);
    printf("two: destroy A rc=%d; B still works=%d detect=%s\n", memkind_destroy_kind(a),
           inside(y, 64, two + 8 * MiB, 8 * MiB), kn(memkind_detect_kind(y), a, b));
    memkind_free(b, y);
    printf("two: destroy B rc=%d\n", memkind_destroy_kind(b));
    free(two);
    printf("DONE\n");
    return 0;
}
