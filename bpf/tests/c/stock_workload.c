/* Known numbers of memkind 1.14 calls on MEMKIND_DEFAULT and MEMKIND_REGULAR, from the main
 * thread and short-lived threads. bpf/tests/stock.rs checks the probe's counts against them. */
#include <memkind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 3
#define PER_THREAD 100

static void *worker(void *arg)
{
    memkind_t kind = arg;
    void *p[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++)
        p[i] = memkind_malloc(kind, 64);
    for (int i = 0; i < PER_THREAD; i++)
        memkind_free(kind, p[i]);
    return NULL;
}

int main(void)
{
    void *p[1000];
    /* DEFAULT: 1000 mallocs of 100 bytes, 10 callocs of 4 x 25, 5 posix_memaligns of 4096. */
    for (int i = 0; i < 1000; i++)
        if (!(p[i] = memkind_malloc(MEMKIND_DEFAULT, 100)))
            return 2;
    for (int i = 0; i < 1000; i++)
        memkind_free(MEMKIND_DEFAULT, p[i]);
    for (int i = 0; i < 10; i++)
        p[i] = memkind_calloc(MEMKIND_DEFAULT, 4, 25);
    for (int i = 0; i < 10; i++)
        memkind_free(NULL, p[i]);
    for (int i = 0; i < 5; i++)
        if (memkind_posix_memalign(MEMKIND_DEFAULT, &p[i], 64, 4096))
            return 3;
    for (int i = 0; i < 5; i++)
        memkind_free(MEMKIND_DEFAULT, p[i]);
    /* REGULAR: 500 mallocs of 1000 bytes, then 7 reallocs to 5000, all freed. */
    for (int i = 0; i < 500; i++)
        if (!(p[i] = memkind_malloc(MEMKIND_REGULAR, 1000)))
            return 4;
    for (int i = 0; i < 7; i++)
        if (!(p[i] = memkind_realloc(MEMKIND_REGULAR, p[i], 5000)))
            return 5;
    for (int i = 0; i < 500; i++)
        memkind_free(MEMKIND_REGULAR, p[i]);
    /* Threads: THREADS x PER_THREAD mallocs of 64 on DEFAULT. */
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, MEMKIND_DEFAULT);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("done\n");
    return 0;
}
