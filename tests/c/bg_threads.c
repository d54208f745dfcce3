// Background threads and MEMKIND_BACKGROUND_THREAD_LIMIT: enables jemalloc's background threads,
// allocates from several kinds in several threads, and prints how many threads the process has
// (run with a limit, so the count is deterministic).
// `bg_threads malformed` (ours only; 1.14 aborts at load on a malformed limit): the library must
// load, memkind_set_bg_threads must return MEMKIND_ERROR_ENVIRON and allocation must still work;
// exits 0 if so.
#include <dirent.h>
#include <memkind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void *work(void *arg) {
    memkind_t kinds[] = {MEMKIND_DEFAULT, MEMKIND_REGULAR};
    for (int i = 0; i < 2000; i++) {
        void *p = memkind_malloc(kinds[i % 2], 4096 + (i % 7) * 8192);
        memkind_free(NULL, p);
    }
    return arg;
}

static int malformed(void) {
    int err = memkind_set_bg_threads(true);
    printf("set_bg_threads(true): %d\n", err);
    void *p = memkind_malloc(MEMKIND_REGULAR, 100);
    void *q = memkind_malloc(MEMKIND_DEFAULT, 100);
    printf("allocations: %s\n", p && q ? "ok" : "failed");
    memkind_free(NULL, p);
    memkind_free(NULL, q);
    return err == MEMKIND_ERROR_ENVIRON && p && q ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "malformed") == 0)
        return malformed();
    printf("threads at start: %d\n", count_threads());
    printf("set_bg_threads(true): %d\n", memkind_set_bg_threads(true));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    // jemalloc starts background threads beyond the first one asynchronously, when the arenas
    // they serve have work: wait (up to 10 s) for the limit to be reached, so a slow machine
    // gives the same answer.
    const char *env = getenv("MEMKIND_BACKGROUND_THREAD_LIMIT");
    int want = 1 + (env ? atoi(env) : 0);
    for (int i = 0; i < 200 && count_threads() < want; i++)
        usleep(50 * 1000);
    usleep(100 * 1000);
    printf("threads after work: %d\n", count_threads());
    printf("set_bg_threads(false): %d\n", memkind_set_bg_threads(false));
    usleep(200 * 1000);
    printf("threads after disable: %d\n", count_threads());
    return 0;
}
