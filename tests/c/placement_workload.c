/* A workload for memkind-probe's placement tests (tests/tests/probe_placement.rs on the host,
 * tests/tests/kernel_probe_placement.rs in the vmtest cells): it allocates and touches the asked
 * amounts of memory of each kind, prints one line per kind
 *   touched NAME BYTES
 * then "ready", keeps the memory, and waits: HOLD_MS milliseconds, or (HOLD_MS = 0) until stdin
 * reaches end of file. It frees nothing, so the placement the probe sees before the exit is the
 * placement of everything it touched.
 *
 * Usage: placement_workload HOLD_MS NAME:MIB [NAME:MIB...]
 *   NAME: DEFAULT REGULAR HBW HBW_PREFERRED INTERLEAVE HUGETLB PMEM (PMEM uses the directory in
 *   $MEMKIND_RS_PMEM_DIR, or /tmp). MIB may be followed by "+FREE1": node 1's MemFree plus that
 *   many MiB (to make a PREFERRED kind spill off node 1).
 * Memory is taken in blocks of 1 MiB (large extents of the kind's own arenas), each page written.
 */
#include <memkind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)

static memkind_t by_name(const char *name) {
    static const struct {
        const char *name;
        memkind_t *kind;
    } table[] = {
        {"DEFAULT", &MEMKIND_DEFAULT},
        {"REGULAR", &MEMKIND_REGULAR},
        {"HBW", &MEMKIND_HBW},
        {"HBW_PREFERRED", &MEMKIND_HBW_PREFERRED},
        {"INTERLEAVE", &MEMKIND_INTERLEAVE},
        {"HUGETLB", &MEMKIND_HUGETLB},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0)
            return *table[i].kind;
    if (strcmp(name, "PMEM") == 0) {
        const char *dir = getenv("MEMKIND_RS_PMEM_DIR");
        memkind_t k = NULL;
        int err = memkind_create_pmem(dir ? dir : "/tmp", 0, &k);
        if (err) {
            fprintf(stderr, "memkind_create_pmem(%s): %d\n", dir ? dir : "/tmp", err);
            exit(2);
        }
        return k;
    }
    fprintf(stderr, "unknown kind %s\n", name);
    exit(64);
}

/* MiB free on node `node`, from sysfs (0 when unknown). */
static size_t node_free_mib(int node) {
    char path[128], line[256];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/meminfo", node);
    FILE *f = fopen(path, "r");
    size_t kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "MemFree:");
        if (p)
            kb = strtoull(p + 8, NULL, 10);
    }
    fclose(f);
    return kb >> 10;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOLD_MS NAME:MIB...\n", argv[0]);
        return 64;
    }
    long hold_ms = strtol(argv[1], NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    for (int a = 2; a < argc; a++) {
        char name[64];
        snprintf(name, sizeof name, "%s", argv[a]);
        char *colon = strchr(name, ':');
        if (!colon) {
            fprintf(stderr, "want NAME:MIB, got %s\n", argv[a]);
            return 64;
        }
        *colon = 0;
        char *spec = colon + 1;
        size_t mib = strtoull(spec, NULL, 10);
        char *plus = strstr(spec, "+FREE1");
        if (strncmp(spec, "FREE1", 5) == 0 || plus)
            mib = node_free_mib(1) + (plus ? strtoull(spec, NULL, 10) : 0);
        memkind_t k = by_name(name);
        size_t touched = 0;
        for (size_t i = 0; i < mib; i++) {
            char *p = memkind_malloc(k, BLOCK);
            if (!p) {
                fprintf(stderr, "%s: malloc failed after %zu MiB\n", name, i);
                break;
            }
            for (size_t off = 0; off < BLOCK; off += (size_t)page)
                p[off] = 1;
            touched += BLOCK;
        }
        printf("touched MEMKIND_%s %zu\n", name, touched);
    }
    printf("ready\n");
    fflush(stdout);
    if (hold_ms > 0) {
        struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    } else {
        char buf[256];
        while (fread(buf, 1, sizeof buf, stdin) > 0) {
        }
    }
    return 0;
}
