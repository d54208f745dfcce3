/* Requests no machine can satisfy: twice the machine's RAM + swap, one block. memkind 1.14 maps
 * extents with MAP_PRIVATE | MAP_ANONYMOUS (no MAP_NORESERVE), so under the kernel's overcommit
 * heuristic (vm.overcommit_memory 0) the mmap is refused and malloc / calloc / realloc return
 * NULL with ENOMEM, posix_memalign returns ENOMEM. Ordinary big blocks (64 MiB, 1 GiB of address
 * space, untouched) still work, and so does the kind afterwards.
 */
#include "common.h"
#include <sys/sysinfo.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static size_t huge_size;

static void probe(const char *name, memkind_t k)
{
    int avail = memkind_check_available(k);
    printf("%s check_available=%d\n", name, avail);
    if (avail != 0)
        return;
    errno = 0;
    void *p = memkind_malloc(k, huge_size);
    printf("  malloc 2xRAM null=%d errno=%s\n", p == NULL, errno_name(p ? 0 : errno));
    memkind_free(k, p);
    errno = 0;
    p = memkind_calloc(k, 1, huge_size);
    printf("  calloc 2xRAM null=%d errno=%s\n", p == NULL, errno_name(p ? 0 : errno));
    memkind_free(k, p);
    void *q = NULL;
    errno = 0;
    int rc = memkind_posix_memalign(k, &q, 64, huge_size);
    printf("  posix_memalign 64 2xRAM rc=%s null=%d errno=%s\n", errno_name(rc), q == NULL,
           errno_name(errno));
    memkind_free(k, q);
    q = NULL;
    rc = memkind_posix_memalign(k, &q, 2 * MiB, huge_size);
    printf("  posix_memalign 2M 2xRAM rc=%s null=%d\n", errno_name(rc), q == NULL);
    memkind_free(k, q);
    char *s = memkind_malloc(k, 100);
    errno = 0;
    char *r = memkind_realloc(k, s, huge_size);
    printf("  realloc 100->2xRAM null=%d errno=%s\n", r == NULL, errno_name(r ? 0 : errno));
    memkind_free(k, r ? r : s);
    /* Normal big blocks are unaffected. */
    static const size_t big[] = {64 * MiB, 1024 * MiB};
    for (int i = 0; i < 2; i++) {
        char *b = memkind_malloc(k, big[i]);
        printf("  malloc %zu MiB ok=%d", big[i] / MiB, b != NULL);
        if (b) {
            b[0] = 1;
            b[big[i] - 1] = 2;
            printf(" touched=%d", b[0] == 1 && b[big[i] - 1] == 2);
        }
        printf("\n");
        memkind_free(k, b);
    }
    void *a = NULL;
    rc = memkind_posix_memalign(k, &a, 4096, 256 * MiB);
    printf("  posix_memalign 4K 256MiB rc=%s\n", errno_name(rc));
    memkind_free(k, a);
    p = memkind_malloc(k, 32);
    printf("  malloc 32 after ok=%d\n", p != NULL);
    memkind_free(k, p);
}

int main(void)
{
    setup_stdout();
    struct sysinfo si;
    if (sysinfo(&si) != 0) {
        printf("sysinfo failed\n");
        return 1;
    }
    unsigned long long ram = (unsigned long long)si.totalram * si.mem_unit;
    unsigned long long swap = (unsigned long long)si.totalswap * si.mem_unit;
    huge_size = (size_t)(2 * (ram + swap));
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = -1;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = -1;
        fclose(f);
    }
    printf("overcommit_memory=%d\n", mode);
    for (int i = 1; i < NUM_KINDS; i++) {
        memkind_t k = *ALL_KINDS[i].kind;
        if (k == MEMKIND_DEFAULT || is_gbtlb(k))
            continue;
        if (k == MEMKIND_HUGETLB || k == MEMKIND_HBW_HUGETLB || k == MEMKIND_HBW_ALL_HUGETLB ||
            k == MEMKIND_HBW_PREFERRED_HUGETLB)
            continue; /* the hugepage pool, not overcommit, limits these */
        probe(ALL_KINDS[i].name, k);
    }
    return 0;
}
