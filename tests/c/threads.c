/* 4 threads allocating/freeing in several kinds at once, then a fork whose child allocates and
 * frees in the same kinds (and frees a block the parent allocated before the fork).
 * usage: threads [hugetlb]   "hugetlb" adds MEMKIND_HUGETLB (only when the harness reserved
 * pages: the host pool is shared with other processes and may be empty or exhausted).
 */
#include "common.h"
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 4
#define ROUNDS 2000
#define LIVE 64

static memkind_t kinds[8];
static int nkinds;

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    void *live[LIVE] = {0};
    size_t live_n[LIVE] = {0};
    unsigned seed = id * 7919 + 1;
    long bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245 + 12345;
        unsigned slot = (seed >> 8) % LIVE;
        if (live[slot]) {
            if (!check_fill(live[slot], live_n[slot], slot + id))
                bad++;
            memkind_free((r & 1) ? NULL : memkind_detect_kind(live[slot]), live[slot]);
            live[slot] = NULL;
        }
        memkind_t k = kinds[(seed >> 16) % nkinds];
        size_t n = 1 + (seed >> 4) % (r % 50 == 0 ? 300000 : 5000);
        void *p = memkind_malloc(k, n);
        if (!p) {
            bad++;
            continue;
        }
        if (memkind_detect_kind(p) != k)
            bad++;
        fill(p, n, slot + id);
        live[slot] = p;
        live_n[slot] = n;
    }
    for (unsigned s = 0; s < LIVE; s++)
        if (live[s]) {
            if (!check_fill(live[s], live_n[s], s + id))
                bad++;
            memkind_free(NULL, live[s]);
        }
    return (void *)(uintptr_t)bad;
}

static int run_threads(const char *who)
{
    pthread_t t[NTHREADS];
    for (unsigned i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    long bad = 0;
    for (unsigned i = 0; i < NTHREADS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        bad += (long)(uintptr_t)rv;
    }
    printf("%s threads=%d bad=%ld\n", who, NTHREADS, bad);
    return bad == 0;
}

int main(int argc, char **argv)
{
    setup_stdout();
    memkind_t cand[] = {MEMKIND_DEFAULT, MEMKIND_REGULAR, MEMKIND_INTERLEAVE,
                        MEMKIND_HIGHEST_CAPACITY, MEMKIND_HBW, MEMKIND_HBW_PREFERRED,
                        MEMKIND_HUGETLB};
    unsigned ncand = sizeof cand / sizeof cand[0];
    if (!(argc > 1 && strcmp(argv[1], "hugetlb") == 0))
        ncand--; /* leave MEMKIND_HUGETLB out */
    for (unsigned i = 0; i < ncand; i++) {
        int a = memkind_check_available(cand[i]);
        printf("kind %s avail=%d\n", kind_name(cand[i]), a);
        if (a == 0)
            kinds[nkinds++] = cand[i];
    }
    int ok = run_threads("parent");

    /* Blocks allocated before the fork, one per kind. */
    void *pre[8];
    for (int i = 0; i < nkinds; i++) {
        pre[i] = memkind_malloc(kinds[i], 1000);
        if (pre[i])
            fill(pre[i], 1000, 42);
        else
            ok = 0;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int cok = 1;
        for (int i = 0; i < nkinds; i++) {
            if (!pre[i] || !check_fill(pre[i], 1000, 42))
                cok = 0;
            memkind_free(NULL, pre[i]);
            void *p = memkind_malloc(kinds[i], 5000);
            if (!p)
                cok = 0;
            else {
                fill(p, 5000, 1);
                cok &= check_fill(p, 5000, 1) && memkind_detect_kind(p) == kinds[i];
                memkind_free(kinds[i], p);
            }
        }
        printf("child single ok=%d\n", cok);
        cok &= run_threads("child");
        fflush(stdout);
        _exit(cok ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("child exited=%d status=%d\n", WIFEXITED(st), WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    for (int i = 0; i < nkinds; i++) {
        ok &= pre[i] && check_fill(pre[i], 1000, 42);
        memkind_free(kinds[i], pre[i]);
    }
    printf("parent after fork ok=%d\n", ok);
    printf("DONE\n");
    return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
