// Runs under memkind 1.14's malloc interposer: LD_PRELOAD=libmemtier.so.0 with MEMKIND_MEM_TIERS
// set, every malloc/calloc/realloc/posix_memalign/free of the program (and of libc, and of the
// library's own start-up) goes through memtier_* and memkind_*. Exercises them in two threads and
// a fork child, and prints only deterministic facts. Output is flushed at exit, after the
// interposer's destructor has run (stdio's buffer comes from the interposer).
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *work(void *arg) {
    uintptr_t seed = (uintptr_t)arg;
    char *v[512];
    unsigned long sum = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 512; i++) {
            size_t n = 1 + (i * 37 + round * 11 + seed) % 5000;
            v[i] = (i % 3) ? malloc(n) : calloc(1, n);
            if (!v[i])
                return (void *)1;
            memset(v[i], (int)(i & 0x7f), n);
            if (malloc_usable_size(v[i]) < n)
                return (void *)2;
        }
        for (int i = 0; i < 512; i += 2) {
            char *q = realloc(v[i], 6000 + i);
            if (!q)
                return (void *)3;
            sum += (unsigned char)q[0];
            v[i] = q;
        }
        for (int i = 0; i < 512; i++)
            free(v[i]);
    }
    void *a = NULL;
    if (posix_memalign(&a, 4096, 10000) != 0 || ((uintptr_t)a & 4095))
        return (void *)4;
    free(a);
    return (void *)(sum == 0 ? 5 : 0);
}

int main(void) {
    pthread_t t[2];
    for (uintptr_t i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d: %s\n", i, r ? "failed" : "ok");
    }
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        void *r = work((void *)7);
        printf("child: %s\n", r ? "failed" : "ok");
        fflush(stdout);
        _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    char *s = strdup("strdup through the interposer");
    printf("%s\n", s);
    free(s);
    printf("done\n");
    return 0;
}
