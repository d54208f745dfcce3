/* The operations API of memkind 1.14 (memkind_default(3), memkind_hbw(3), memkind_hugetlb(3),
 * memkind_pmem(3), memkind_fixed(3), memkind_arena(3)): the exported MEMKIND_*_OPS tables and
 * `struct memkind`'s leading fields, read as code written against 1.14's internal headers reads
 * them, and every exported operation called directly and through a kind's table.
 *
 * For each table, each field prints as "-" (NULL), the name of the exported function it points
 * to, or "private" (a function the library does not export). Never addresses.
 *
 * usage: ops DIR   (DIR: a directory for a PMEM kind)
 */
#include "common.h"

#include <ctype.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 1.14's include/memkind/internal/memkind_private.h (not installed): the operations table and the
 * leading fields of struct memkind. */
struct memkind_ops {
    int (*create)(memkind_t kind, struct memkind_ops *ops, const char *name);
    int (*destroy)(memkind_t kind);
    void *(*malloc)(memkind_t kind, size_t size);
    void *(*calloc)(memkind_t kind, size_t num, size_t size);
    int (*posix_memalign)(memkind_t kind, void **memptr, size_t alignment, size_t size);
    void *(*realloc)(memkind_t kind, void *ptr, size_t size);
    void (*free)(memkind_t kind, void *ptr);
    void *(*mmap)(memkind_t kind, void *addr, size_t size);
    int (*mbind)(memkind_t kind, void *ptr, size_t size);
    int (*madvise)(memkind_t kind, void *addr, size_t size);
    int (*get_mmap_flags)(memkind_t kind, int *flags);
    int (*get_mbind_mode)(memkind_t kind, int *mode);
    int (*get_mbind_nodemask)(memkind_t kind, unsigned long *nodemask, unsigned long maxnode);
    int (*get_arena)(memkind_t kind, unsigned int *arena, size_t size);
    int (*check_available)(memkind_t kind);
    void (*init_once)(void);
    int (*finalize)(memkind_t kind);
    size_t (*malloc_usable_size)(memkind_t kind, void *ptr);
    int (*update_memory_usage_policy)(memkind_t kind, memkind_mem_usage_policy policy);
    int (*get_stat)(memkind_t kind, memkind_stat_type stat, size_t *value);
    void *(*defrag_reallocate)(memkind_t kind, void *ptr);
};
static const char *FIELDS[] = {"create", "destroy", "malloc", "calloc", "posix_memalign",
                               "realloc", "free", "mmap", "mbind", "madvise", "get_mmap_flags",
                               "get_mbind_mode", "get_mbind_nodemask", "get_arena",
                               "check_available", "init_once", "finalize", "malloc_usable_size",
                               "update_memory_usage_policy", "get_stat", "defrag_reallocate"};
#define NUM_FIELDS 21

/* get_mempolicy(2) without libnuma's header. */
static int policy_of(void *addr, unsigned long *mask, unsigned long maxnode)
{
    int mode = -1;
    if (syscall(SYS_get_mempolicy, &mode, mask, maxnode, addr, 2 /* MPOL_F_ADDR */))
        return -1;
    return mode;
}

struct memkind {
    struct memkind_ops *ops;
    unsigned int partition;
    char name[64];
};

/* The exported operations (1.14's memkind_default.h, memkind_hbw.h, memkind_hugetlb.h,
 * memkind_pmem.h, memkind_fixed.h). */
int memkind_default_create(memkind_t, struct memkind_ops *, const char *);
int memkind_default_destroy(memkind_t);
void *memkind_default_malloc(memkind_t, size_t);
void *memkind_default_calloc(memkind_t, size_t, size_t);
int memkind_default_posix_memalign(memkind_t, void **, size_t, size_t);
void *memkind_default_realloc(memkind_t, void *, size_t);
void memkind_default_free(memkind_t, void *);
size_t memkind_default_malloc_usable_size(memkind_t, void *);
void *memkind_default_mmap(memkind_t, void *, size_t);
int memkind_default_mbind(memkind_t, void *, size_t);
int memkind_default_get_mmap_flags(memkind_t, int *);
int memkind_default_get_mbind_mode(memkind_t, int *);
int memkind_preferred_get_mbind_mode(memkind_t, int *);
int memkind_interleave_get_mbind_mode(memkind_t, int *);
int memkind_default_get_mbind_nodemask(memkind_t, unsigned long *, unsigned long);
int memkind_regular_all_get_mbind_nodemask(memkind_t, unsigned long *, unsigned long);
int memkind_hbw_get_mbind_nodemask(memkind_t, unsigned long *, unsigned long);
int memkind_hbw_all_get_mbind_nodemask(memkind_t, unsigned long *, unsigned long);
int memkind_dax_kmem_all_get_mbind_nodemask(memkind_t, unsigned long *, unsigned long);
int memkind_nohugepage_madvise(memkind_t, void *, size_t);
int memkind_posix_check_alignment(memkind_t, size_t);
int memkind_hbw_check_available(memkind_t);
int memkind_hbw_hugetlb_check_available(memkind_t);
int memkind_hugetlb_check_available_2mb(memkind_t);
int memkind_hugetlb_get_mmap_flags(memkind_t, int *);
int memkind_pmem_get_mmap_flags(memkind_t, int *);
void memkind_default_init_once(void);
void memkind_hbw_init_once(void);
void memkind_hbw_all_init_once(void);
void memkind_hbw_hugetlb_init_once(void);
void memkind_hbw_all_hugetlb_init_once(void);
void memkind_hbw_preferred_init_once(void);
void memkind_hbw_preferred_hugetlb_init_once(void);
void memkind_hbw_interleave_init_once(void);
void memkind_hugetlb_init_once(void);
void memkind_interleave_init_once(void);

#define TABLE(n) {#n, &n}
extern struct memkind_ops MEMKIND_DEFAULT_OPS, MEMKIND_HUGETLB_OPS, MEMKIND_INTERLEAVE_OPS,
    MEMKIND_REGULAR_OPS, MEMKIND_HBW_OPS, MEMKIND_HBW_ALL_OPS, MEMKIND_HBW_PREFERRED_OPS,
    MEMKIND_HBW_HUGETLB_OPS, MEMKIND_HBW_ALL_HUGETLB_OPS, MEMKIND_HBW_PREFERRED_HUGETLB_OPS,
    MEMKIND_HBW_INTERLEAVE_OPS, MEMKIND_GBTLB_OPS, MEMKIND_HBW_GBTLB_OPS,
    MEMKIND_HBW_PREFERRED_GBTLB_OPS, MEMKIND_DAX_KMEM_OPS, MEMKIND_DAX_KMEM_ALL_OPS,
    MEMKIND_DAX_KMEM_PREFERRED_OPS, MEMKIND_DAX_KMEM_INTERLEAVE_OPS,
    MEMKIND_HIGHEST_CAPACITY_OPS, MEMKIND_HIGHEST_CAPACITY_PREFERRED_OPS,
    MEMKIND_HIGHEST_CAPACITY_LOCAL_OPS, MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED_OPS,
    MEMKIND_LOWEST_LATENCY_LOCAL_OPS, MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED_OPS,
    MEMKIND_HIGHEST_BANDWIDTH_LOCAL_OPS, MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED_OPS,
    MEMKIND_PMEM_OPS, MEMKIND_FIXED_OPS;
static const struct {
    const char *name;
    struct memkind_ops *ops;
} TABLES[] = {
    TABLE(MEMKIND_DEFAULT_OPS), TABLE(MEMKIND_HUGETLB_OPS), TABLE(MEMKIND_INTERLEAVE_OPS),
    TABLE(MEMKIND_REGULAR_OPS), TABLE(MEMKIND_HBW_OPS), TABLE(MEMKIND_HBW_ALL_OPS),
    TABLE(MEMKIND_HBW_PREFERRED_OPS), TABLE(MEMKIND_HBW_HUGETLB_OPS),
    TABLE(MEMKIND_HBW_ALL_HUGETLB_OPS), TABLE(MEMKIND_HBW_PREFERRED_HUGETLB_OPS),
    TABLE(MEMKIND_HBW_INTERLEAVE_OPS), TABLE(MEMKIND_GBTLB_OPS), TABLE(MEMKIND_HBW_GBTLB_OPS),
    TABLE(MEMKIND_HBW_PREFERRED_GBTLB_OPS), TABLE(MEMKIND_DAX_KMEM_OPS),
    TABLE(MEMKIND_DAX_KMEM_ALL_OPS), TABLE(MEMKIND_DAX_KMEM_PREFERRED_OPS),
    TABLE(MEMKIND_DAX_KMEM_INTERLEAVE_OPS), TABLE(MEMKIND_HIGHEST_CAPACITY_OPS),
    TABLE(MEMKIND_HIGHEST_CAPACITY_PREFERRED_OPS), TABLE(MEMKIND_HIGHEST_CAPACITY_LOCAL_OPS),
    TABLE(MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED_OPS),
    TABLE(MEMKIND_LOWEST_LATENCY_LOCAL_OPS), TABLE(MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED_OPS),
    TABLE(MEMKIND_HIGHEST_BANDWIDTH_LOCAL_OPS),
    TABLE(MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED_OPS), TABLE(MEMKIND_PMEM_OPS),
    TABLE(MEMKIND_FIXED_OPS),
};
#define NUM_TABLES ((int)(sizeof(TABLES) / sizeof(TABLES[0])))

/* "-", the exported symbol a function pointer is, or "private". */
static const char *fn_name(void *f)
{
    Dl_info di;
    if (!f)
        return "-";
    if (dladdr(f, &di) && di.dli_sname && di.dli_saddr == f)
        return di.dli_sname;
    return "private";
}

static const char *table_name(struct memkind_ops *ops)
{
    for (int i = 0; i < NUM_TABLES; i++)
        if (TABLES[i].ops == ops)
            return TABLES[i].name;
    return ops ? "other" : "NULL";
}

static void print_mask(const char *what, int rc, const unsigned long *mask, unsigned long words)
{
    printf("%s rc=%d nodes=", what, rc);
    int any = 0;
    if (rc == 0)
        for (unsigned long i = 0; i < words * 64; i++)
            if (mask[i / 64] & (1UL << (i % 64))) {
                printf("%s%lu", any ? "," : "", i);
                any = 1;
            }
    printf("%s\n", any ? "" : "none");
}

/* The NUMA policy of the mapping at `addr`: its mode and node mask. */
static void print_policy(void *addr)
{
    unsigned long nm[16] = {0};
    printf("  policy mode=%d ", policy_of(addr, nm, 1024));
    print_mask("mask", 0, nm, 16);
}

typedef int (*mask_fn)(memkind_t, unsigned long *, unsigned long);

static void nodemask_calls(const char *what, mask_fn f, memkind_t k)
{
    unsigned long mask[16];
    memset(mask, 0xff, sizeof mask);
    int rc = f(k, mask, 1024);
    char line[128];
    snprintf(line, sizeof line, "%s maxnode=1024", what);
    print_mask(line, rc, mask, 16);
    printf("%s null_mask rc=%d\n", what, f(k, NULL, 0));
}

/* A kind through its own table, as code written against memkind_arena(3) does. */
static void through_ops(const char *label, memkind_t k, const char *name)
{
    struct memkind_ops *ops = k->ops;
    printf("%s name_ok=%d partition=%u ops=%s\n", label, strcmp(k->name, name) == 0, k->partition,
           table_name(ops));
    int avail = memkind_check_available(k);
    if (ops->check_available)
        printf("  ops.check_available rc=%d (memkind_check_available %d)\n",
               ops->check_available(k), avail);
    if (ops->get_mmap_flags) {
        int flags = -1;
        int rc = ops->get_mmap_flags(k, &flags);
        printf("  ops.get_mmap_flags rc=%d flags=0x%x\n", rc, flags);
    }
    if (ops->get_mbind_mode) {
        int mode = -1;
        int rc = ops->get_mbind_mode(k, &mode);
        printf("  ops.get_mbind_mode rc=%d mode=%d\n", rc, mode);
    }
    if (ops->get_mbind_nodemask) {
        unsigned long mask[16] = {0};
        int rc = ops->get_mbind_nodemask(k, mask, 1024);
        print_mask("  ops.get_mbind_nodemask", rc, mask, 16);
    }
    if (avail != 0 || ops->malloc == NULL)
        return;
    void *p = ops->malloc(k, 100);
    printf("  ops.malloc ok=%d", p != NULL);
    if (p) {
        fill(p, 100, 3);
        printf(" detect=%s usable_ge=%d", kind_name(memkind_detect_kind(p)),
               ops->malloc_usable_size(k, p) >= 100);
        p = ops->realloc(k, p, 5000);
        printf(" realloc ok=%d data=%d", p != NULL, p && check_fill(p, 100, 3));
        ops->free(k, p);
    }
    void *c = ops->calloc(k, 10, 100);
    printf(" calloc ok=%d zero=%d", c != NULL, c && all_zero(c, 1000));
    ops->free(k, c);
    void *a = NULL;
    int rc = ops->posix_memalign(k, &a, 4096, 100);
    printf(" posix_memalign rc=%d aligned=%d\n", rc, a && aligned(a, 4096));
    ops->free(k, a);
}

int main(int argc, char **argv)
{
    setup_stdout();
    if (argc < 2) {
        fprintf(stderr, "usage: ops DIR\n");
        return 2;
    }
    for (int i = 0; i < NUM_TABLES; i++) {
        void **f = (void **)TABLES[i].ops;
        printf("%s:", TABLES[i].name);
        for (int j = 0; j < NUM_FIELDS; j++)
            printf(" %s=%s", FIELDS[j], fn_name(f[j]));
        printf("\n");
    }

    for (int i = 0; i < NUM_KINDS; i++)
        {
        /* memkind's names: the variable's name in lower case ("memkind_hbw"). */
        char lower[64];
        snprintf(lower, sizeof lower, "%s", ALL_KINDS[i].name);
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        through_ops(ALL_KINDS[i].name, *ALL_KINDS[i].kind, lower);
    }

    /* The family functions, called directly; the nodemask functions take a NULL kind as
     * memkind-hbw-nodes and memkind-auto-dax-kmem-nodes call them. */
    nodemask_calls("default_get_mbind_nodemask", memkind_default_get_mbind_nodemask, NULL);
    nodemask_calls("regular_all_get_mbind_nodemask", memkind_regular_all_get_mbind_nodemask,
                   NULL);
    nodemask_calls("hbw_get_mbind_nodemask", memkind_hbw_get_mbind_nodemask, NULL);
    nodemask_calls("hbw_all_get_mbind_nodemask", memkind_hbw_all_get_mbind_nodemask, NULL);
    nodemask_calls("dax_kmem_all_get_mbind_nodemask", memkind_dax_kmem_all_get_mbind_nodemask,
                   NULL);
    {
        unsigned long small = ~0UL;
        int rc = memkind_default_get_mbind_nodemask(NULL, &small, 8);
        print_mask("default_get_mbind_nodemask maxnode=8", rc, &small, 1);
    }
    int m = -1, rc;
    rc = memkind_default_get_mbind_mode(NULL, &m);
    printf("default_get_mbind_mode rc=%d mode=%d\n", rc, m);
    rc = memkind_preferred_get_mbind_mode(NULL, &m);
    printf("preferred_get_mbind_mode rc=%d mode=%d\n", rc, m);
    rc = memkind_interleave_get_mbind_mode(NULL, &m);
    printf("interleave_get_mbind_mode rc=%d mode=%d\n", rc, m);
    int fl = -1;
    rc = memkind_default_get_mmap_flags(NULL, &fl);
    printf("default_get_mmap_flags rc=%d flags=0x%x\n", rc, fl);
    rc = memkind_hugetlb_get_mmap_flags(NULL, &fl);
    printf("hugetlb_get_mmap_flags rc=%d flags=0x%x\n", rc, fl);
    rc = memkind_pmem_get_mmap_flags(NULL, &fl);
    printf("pmem_get_mmap_flags rc=%d flags=0x%x\n", rc, fl);
    static const size_t aligns[] = {0, 1, 4, 8, 16, 24, 4096, (size_t)1 << 40, SIZE_MAX};
    for (unsigned i = 0; i < sizeof aligns / sizeof aligns[0]; i++)
        printf("posix_check_alignment %zu rc=%d\n", aligns[i],
               memkind_posix_check_alignment(NULL, aligns[i]));
    printf("hbw_check_available HBW rc=%d\n", memkind_hbw_check_available(MEMKIND_HBW));
    printf("hbw_hugetlb_check_available HBW_HUGETLB rc=%d\n",
           memkind_hbw_hugetlb_check_available(MEMKIND_HBW_HUGETLB));
    printf("hugetlb_check_available_2mb HUGETLB rc=%d (memkind_check_available %d)\n",
           memkind_hugetlb_check_available_2mb(MEMKIND_HUGETLB),
           memkind_check_available(MEMKIND_HUGETLB));

    /* memkind_default_*: the kind argument is not used; memory is MEMKIND_DEFAULT's. */
    errno = 0;
    printf("default_malloc 0 null=%d\n", memkind_default_malloc(NULL, 0) == NULL);
    void *p = memkind_default_malloc(MEMKIND_REGULAR, 200);
    printf("default_malloc 200 ok=%d detect=%s usable_ge=%d\n", p != NULL,
           kind_name(memkind_detect_kind(p)), memkind_default_malloc_usable_size(NULL, p) >= 200);
    fill(p, 200, 9);
    p = memkind_default_realloc(NULL, p, 100000);
    printf("default_realloc ok=%d data=%d detect=%s\n", p != NULL, check_fill(p, 200, 9),
           kind_name(memkind_detect_kind(p)));
    printf("default_realloc 0 null=%d\n", memkind_default_realloc(NULL, p, 0) == NULL);
    void *c = memkind_default_calloc(NULL, 100, 100);
    printf("default_calloc ok=%d zero=%d\n", c != NULL, all_zero(c, 10000));
    memkind_default_free(NULL, c);
    printf("default_calloc 0 null=%d\n", memkind_default_calloc(NULL, 0, 8) == NULL);
    void *a = NULL;
    rc = memkind_default_posix_memalign(NULL, &a, 256, 1000);
    printf("default_posix_memalign rc=%d aligned=%d\n", rc, aligned(a, 256));
    memkind_default_free(NULL, a);
    a = (void *)1;
    rc = memkind_default_posix_memalign(NULL, &a, 256, 0);
    printf("default_posix_memalign size0 rc=%d null=%d\n", rc, a == NULL);
    rc = memkind_default_posix_memalign(NULL, &a, 3, 100);
    printf("default_posix_memalign align3 rc=%s\n", errno_name(rc));
    /* A REGULAR block freed through memkind_default_free (1.14: jemalloc's free). */
    void *r = memkind_malloc(MEMKIND_REGULAR, 300);
    memkind_default_free(NULL, r);
    printf("default_free of a REGULAR block ok=1\n");

    /* memkind_default_create fills a caller's struct memkind. */
    struct {
        struct memkind k;
        char rest[256];
    } mine;
    memset(&mine, 0, sizeof mine);
    rc = memkind_default_create(&mine.k, &MEMKIND_REGULAR_OPS, "my_kind");
    printf("default_create rc=%d name=%s ops=%s\n", rc, mine.k.name, table_name(mine.k.ops));
    char longname[100];
    memset(longname, 'x', 99);
    longname[99] = 0;
    rc = memkind_default_create(&mine.k, &MEMKIND_HBW_OPS, longname);
    printf("default_create long rc=%d name_empty=%d ops=%s\n", rc, mine.k.name[0] == 0,
           table_name(mine.k.ops));
    longname[63] = 0;
    rc = memkind_default_create(&mine.k, &MEMKIND_HBW_OPS, longname);
    printf("default_create 63 rc=%d name_len=%zu\n", rc, strlen(mine.k.name));
    printf("default_destroy rc=%d\n", memkind_default_destroy(&mine.k));

    /* memkind_default_mmap / mbind / nohugepage_madvise through a kind's table. */
    size_t len = 2 * MiB;
    void *mp = memkind_default_mmap(MEMKIND_DEFAULT, NULL, len);
    printf("default_mmap DEFAULT ok=%d\n", mp != MAP_FAILED);
    if (mp != MAP_FAILED) {
        memset(mp, 1, len);
        munmap(mp, len);
    }
    mp = memkind_default_mmap(MEMKIND_REGULAR, NULL, len);
    printf("default_mmap REGULAR ok=%d\n", mp != MAP_FAILED);
    if (mp != MAP_FAILED) {
        print_policy(mp);
        printf("  default_mbind rc=%d\n", memkind_default_mbind(MEMKIND_REGULAR, mp, len));
        printf("  nohugepage_madvise rc=%d\n", memkind_nohugepage_madvise(NULL, mp, len));
        printf("  nohugepage_madvise unaligned rc=%d\n",
               memkind_nohugepage_madvise(NULL, (char *)mp + 1, len - 4096));
        munmap(mp, len);
    }
    mp = memkind_default_mmap(MEMKIND_INTERLEAVE, NULL, len);
    printf("default_mmap INTERLEAVE ok=%d\n", mp != MAP_FAILED);
    if (mp != MAP_FAILED) {
        print_policy(mp);
        munmap(mp, len);
    }
    printf("default_mbind HBW rc=%d\n", memkind_default_mbind(MEMKIND_HBW, NULL, 4096));

    /* The init_once functions (each makes its kind usable; unavailable kinds stay so). */
    memkind_default_init_once();
    memkind_hbw_init_once();
    memkind_hbw_all_init_once();
    memkind_hbw_hugetlb_init_once();
    memkind_hbw_all_hugetlb_init_once();
    memkind_hbw_preferred_init_once();
    memkind_hbw_preferred_hugetlb_init_once();
    memkind_hbw_interleave_init_once();
    memkind_hugetlb_init_once();
    memkind_interleave_init_once();
    printf("init_once all returned\n");

    /* Dynamic kinds. */
    memkind_t pk = NULL;
    rc = memkind_create_pmem(argv[1], 0, &pk);
    printf("create_pmem rc=%d\n", rc);
    if (rc == 0) {
        /* "pmem" and the kind's number in 8 hex digits */
        unsigned num;
        char rest[8];
        printf("PMEM name_format_ok=%d\n", strlen(pk->name) == 12 &&
               sscanf(pk->name, "pmem%8x%c", &num, rest) == 1);
        through_ops("PMEM", pk, pk->name);
        memkind_destroy_kind(pk);
    }
    static char buf[4 * MiB] __attribute__((aligned(4096)));
    memkind_t fk = NULL;
    rc = memkind_create_fixed(buf, sizeof buf, &fk);
    printf("create_fixed rc=%d\n", rc);
    if (rc == 0) {
        char want[64];
        snprintf(want, sizeof want, "fixed%p", (void *)buf);
        through_ops("FIXED", fk, want);
        memkind_destroy_kind(fk);
    }
    return 0;
}
