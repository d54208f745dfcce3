/* The trace tier's exactness on memkind-rs (bpf/tests/scenarios/trace.rs, trace_ours_exact):
 * two threads of TRACE_PAIRS malloc/free pairs flat out (one on MEMKIND_REGULAR, one on
 * MEMKIND_DEFAULT, which memkind-rs routes through its traced entry points while a trace is
 * attached), and in the main thread the calls' rare exits: realloc(NULL, n), realloc with a NULL
 * kind, realloc(p, 0), malloc(0), a calloc that overflows, a posix_memalign with a bad
 * alignment. Prints the pointers the main thread got, for the test to match. */
#include <memkind.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define TRACE_PAIRS 20000

static void *worker(void *regular)
{
    memkind_t k = regular ? MEMKIND_REGULAR : MEMKIND_DEFAULT;
    for (int i = 0; i < TRACE_PAIRS; i++) {
        void *p = memkind_malloc(k, 16 + (i & 255));
        if (!p)
            return (void *)1;
        memkind_free(k, p);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[2];
    void *r[2];
    if (pthread_create(&t[0], NULL, worker, (void *)1) || pthread_create(&t[1], NULL, worker, NULL))
        return 2;
    void *a = memkind_realloc(MEMKIND_REGULAR, NULL, 100);
    void *b = memkind_realloc(NULL, a, 200);
    void *c = memkind_realloc(MEMKIND_REGULAR, b, 0);
    void *z = memkind_malloc(MEMKIND_REGULAR, 0);
    void *o = memkind_calloc(MEMKIND_REGULAR, SIZE_MAX / 2, 4);
    void *m = (void *)0x1234;
    int e = memkind_posix_memalign(MEMKIND_REGULAR, &m, 3, 64);
    for (int i = 0; i < 2; i++)
        if (pthread_join(t[i], &r[i]) || r[i])
            return 3;
    if (!a || !b || c || z || o || e == 0)
        return 4;
    printf("%#lx %#lx %d\n", (unsigned long)(uintptr_t)a, (unsigned long)(uintptr_t)b, e);
    return 0;
}
