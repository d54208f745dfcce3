/* memkind-rs demo: a plain memkind 1.14 program (built against Debian's memkind.h) that
 * allocates from several kinds and prints where each allocation landed: which kind owns it,
 * the NUMA node of every page (move_pages(2)) and the page size of its mapping (smaps).
 * Run it against memkind-rs with LD_LIBRARY_PATH pointing at our libmemkind.so.0. */
#define _GNU_SOURCE
#include <memkind.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIZE (8u << 20)
#define MAX_NODES 64

struct named { const char *name; memkind_t *kind; };

static long page_size_kb(void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    unsigned long lo = 0, hi = 0;
    int in = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (in && sscanf(line, "KernelPageSize: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

static void where(const char *name, memkind_t kind)
{
    int err = memkind_check_available(kind);
    if (err) {
        char msg[MEMKIND_ERROR_MESSAGE_SIZE];
        memkind_error_message(err, msg, sizeof msg);
        printf("%-34s unavailable (%d: %s)\n", name, err, msg);
        return;
    }
    char *p = memkind_malloc(kind, SIZE);
    if (!p) {
        printf("%-34s malloc failed: %s\n", name, strerror(errno));
        return;
    }
    memset(p, 0x5a, SIZE);
    enum { PAGES = SIZE / 4096 };
    static void *pages[PAGES];
    static int status[PAGES];
    for (int i = 0; i < PAGES; i++)
        pages[i] = p + (size_t)i * 4096;
    long nodes[MAX_NODES] = {0};
    long other = 0;
    if (syscall(SYS_move_pages, 0, PAGES, pages, NULL, status, 0) == 0) {
        for (int i = 0; i < PAGES; i++) {
            if (status[i] >= 0 && status[i] < MAX_NODES)
                nodes[status[i]]++;
            else
                other++;
        }
    }
    memkind_t owner = memkind_detect_kind(p);
    printf("%-34s %s owner, %3ld kB pages, usable %zu, pages per node:", name,
           owner == kind ? "right" : "WRONG", page_size_kb(p), memkind_malloc_usable_size(NULL, p));
    for (int n = 0; n < MAX_NODES; n++)
        if (nodes[n])
            printf(" N%d=%ld", n, nodes[n]);
    if (other)
        printf(" unknown=%ld", other);
    printf("\n");
    memkind_free(NULL, p);
}

int main(void)
{
    struct named kinds[] = {
        {"MEMKIND_DEFAULT", &MEMKIND_DEFAULT},
        {"MEMKIND_REGULAR", &MEMKIND_REGULAR},
        {"MEMKIND_INTERLEAVE", &MEMKIND_INTERLEAVE},
        {"MEMKIND_HUGETLB", &MEMKIND_HUGETLB},
        {"MEMKIND_HBW", &MEMKIND_HBW},
        {"MEMKIND_HBW_PREFERRED", &MEMKIND_HBW_PREFERRED},
        {"MEMKIND_HBW_ALL", &MEMKIND_HBW_ALL},
        {"MEMKIND_HBW_INTERLEAVE", &MEMKIND_HBW_INTERLEAVE},
        {"MEMKIND_DAX_KMEM", &MEMKIND_DAX_KMEM},
        {"MEMKIND_HIGHEST_CAPACITY", &MEMKIND_HIGHEST_CAPACITY},
        {"MEMKIND_HIGHEST_CAPACITY_LOCAL", &MEMKIND_HIGHEST_CAPACITY_LOCAL},
        {"MEMKIND_LOWEST_LATENCY_LOCAL", &MEMKIND_LOWEST_LATENCY_LOCAL},
        {"MEMKIND_HIGHEST_BANDWIDTH_LOCAL", &MEMKIND_HIGHEST_BANDWIDTH_LOCAL},
    };
    Dl_info info;
    const char *lib = dladdr((void *)memkind_malloc, &info) && info.dli_fname ? info.dli_fname : "?";
    printf("memkind version %d from %s, %d MiB per kind\n", memkind_get_version(), lib, SIZE >> 20);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        where(kinds[i].name, *kinds[i].kind);
    return 0;
}
