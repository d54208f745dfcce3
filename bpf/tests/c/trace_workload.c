/* A known sequence of memkind calls on MEMKIND_REGULAR (which, on memkind-rs, goes through the
 * memkind_arena_* entry points the trace tier probes), then 40 malloc/free pairs of
 * MEMKIND_DEFAULT (which memkind-rs sends through those entry points only while a trace is
 * attached). bpf/tests/scenarios/trace.rs counts the events. */
#include <memkind.h>
#include <stdio.h>

int main(void)
{
    void *p[300];
    for (int i = 0; i < 300; i++)
        if (!(p[i] = memkind_malloc(MEMKIND_REGULAR, 16 + i)))
            return 2;
    for (int i = 0; i < 5; i++)
        if (!(p[i] = memkind_realloc(MEMKIND_REGULAR, p[i], 10000)))
            return 3;
    for (int i = 0; i < 300; i++)
        memkind_free(MEMKIND_REGULAR, p[i]);
    for (int i = 0; i < 20; i++)
        p[i] = memkind_calloc(MEMKIND_REGULAR, 3, 100);
    for (int i = 0; i < 10; i++)
        if (memkind_posix_memalign(MEMKIND_REGULAR, &p[20 + i], 256, 1000))
            return 4;
    for (int i = 0; i < 30; i++)
        memkind_free(MEMKIND_REGULAR, p[i]);
    for (int i = 0; i < 40; i++)
        if (!(p[i] = memkind_malloc(MEMKIND_DEFAULT, 64)))
            return 5;
    for (int i = 0; i < 40; i++)
        memkind_free(MEMKIND_DEFAULT, p[i]);
    printf("done\n");
    return 0;
}
