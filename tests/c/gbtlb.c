/* The deprecated GBTLB kinds (MEMKIND_GBTLB, MEMKIND_HBW_GBTLB, MEMKIND_HBW_PREFERRED_GBTLB):
 * memkind 1.14 backs them with 2 MiB hugetlb pages (MAP_HUGETLB | MAP_HUGE_2MB) in mappings
 * whose sizes are rounded up to 1 GiB (gbtlb_mmap), and checks availability as HUGETLB does
 * (2 MiB pages reserved or overcommittable). So with 512 free 2 MiB pages the first extent of a
 * GBTLB kind maps (and reserves) 1 GiB of them; with fewer its allocations fail with ENOMEM.
 * Prints availability, allocation results, the page size and size of the mapping behind the
 * first block, and how many hugepages the first block took (reserved or used).
 */
#include "common.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static long meminfo(const char *field)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* 2 MiB pages taken: in use plus reserved for mappings. */
static long pages_taken(void)
{
    return meminfo("HugePages_Total:") - meminfo("HugePages_Free:") + meminfo("HugePages_Rsvd:");
}

/* Size in MiB and KernelPageSize in kB of the mapping holding p (smaps). */
static void mapping_of(void *p, long *mib, long *kps)
{
    *mib = -1;
    *kps = -1;
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= a && (uintptr_t)p < b;
            if (in)
                *mib = (long)((b - a) >> 20);
        } else if (in && strncmp(line, "KernelPageSize:", 15) == 0) {
            *kps = strtol(line + 15, NULL, 10);
        }
    }
    if (f)
        fclose(f);
}

static void probe(const char *name, memkind_t k)
{
    printf("%s check_available=%d capacity=%s\n", name, memkind_check_available(k),
           sign_class(memkind_get_capacity(k)));
    long before = pages_taken();
    errno = 0;
    char *p = memkind_malloc(k, 64);
    printf("  malloc 64 ok=%d errno=%s", p != NULL, errno_name(p ? 0 : errno));
    if (!p) {
        printf("\n");
        return;
    }
    long mib, kps;
    mapping_of(p, &mib, &kps);
    long taken = pages_taken() - before;
    fill(p, 64, 5);
    printf(" data=%d detect=%s usable_ge=%d mapping_mib=%ld page_kb=%ld hugepages_taken=%ld\n",
           check_fill(p, 64, 5), kind_name(memkind_detect_kind(p)),
           memkind_malloc_usable_size(k, p) >= 64, mib, kps, taken);
    static const size_t sizes[] = {4096, 1 * MiB, 2 * MiB, 64 * MiB};
    for (int i = 0; i < 4; i++) {
        errno = 0;
        char *q = memkind_malloc(k, sizes[i]);
        printf("  malloc %zu ok=%d errno=%s", sizes[i], q != NULL, errno_name(q ? 0 : errno));
        if (q) {
            q[0] = 1;
            q[sizes[i] - 1] = 2;
            printf(" touched=%d detect=%s", q[0] == 1 && q[sizes[i] - 1] == 2,
                   kind_name(memkind_detect_kind(q)));
        }
        printf("\n");
        memkind_free(k, q);
    }
    void *c = memkind_calloc(k, 100, 10);
    printf("  calloc ok=%d zero=%d\n", c != NULL, c && all_zero(c, 1000));
    memkind_free(NULL, c);
    memkind_free(k, p);
}

int main(void)
{
    setup_stdout();
    probe("MEMKIND_GBTLB", MEMKIND_GBTLB);
    /* Without HBW memory the HBW variants cannot allocate (their availability answer is
     * undefined in 1.14 then, see README.md, so it is not printed). */
    errno = 0;
    void *h = memkind_malloc(MEMKIND_HBW_GBTLB, 64);
    printf("MEMKIND_HBW_GBTLB malloc 64 ok=%d errno=%s\n", h != NULL, errno_name(h ? 0 : errno));
    memkind_free(MEMKIND_HBW_GBTLB, h);
    if (memkind_check_available(MEMKIND_HBW) == 0) {
        probe("MEMKIND_HBW_GBTLB", MEMKIND_HBW_GBTLB);
        probe("MEMKIND_HBW_PREFERRED_GBTLB", MEMKIND_HBW_PREFERRED_GBTLB);
    }
    errno = 0;
    void *pr = memkind_malloc(MEMKIND_HBW_PREFERRED_GBTLB, 64);
    printf("MEMKIND_HBW_PREFERRED_GBTLB malloc 64 ok=%d errno=%s\n", pr != NULL,
           errno_name(pr ? 0 : errno));
    memkind_free(NULL, pr);
    probe("MEMKIND_HUGETLB", MEMKIND_HUGETLB);
    return 0;
}
