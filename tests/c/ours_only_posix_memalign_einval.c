/* OURS ONLY (deliberate difference from memkind 1.14). memkind 1.14 sets *memptr = NULL when
 * memkind_posix_memalign / hbw_posix_memalign fail with EINVAL (bad alignment) on arena kinds;
 * memkind-rs leaves *memptr untouched on EINVAL, as posix_memalign(3) and jemalloc do and as the
 * project's issue requires. Correct behaviour asserted here, for every kind (available or not)
 * and for hbw_posix_memalign / hbw_posix_memalign_psize: rc EINVAL, *memptr untouched, errno
 * preserved. Exit 0 when all hold, 1 otherwise.
 */
#include "common.h"
#include <hbwmalloc.h>

static const size_t BAD_ALIGNS[] = {0, 1, 3, 4, 24, 100, 4097};
#define NUM_BAD ((unsigned)(sizeof BAD_ALIGNS / sizeof BAD_ALIGNS[0]))
#define SENTINEL ((void *)0x1234)

static int check(const char *what, size_t align, int rc, void *m, int e)
{
    int ok = rc == EINVAL && m == SENTINEL && e == 77;
    printf("%s align=%zu rc=%s memptr=%s errno_kept=%d %s\n", what, align, errno_name(rc),
           m == SENTINEL ? "untouched" : m == NULL ? "NULL" : "other", e == 77,
           ok ? "ok" : "FAIL");
    if (rc == 0 && m != SENTINEL && m != NULL)
        memkind_free(NULL, m);
    return !ok;
}

int main(void)
{
    setup_stdout();
    int fails = 0;
    for (int i = 0; i < NUM_KINDS; i++) {
        memkind_t k = *ALL_KINDS[i].kind;
        for (unsigned a = 0; a < NUM_BAD; a++) {
            void *m = SENTINEL;
            errno = 77;
            int rc = memkind_posix_memalign(k, &m, BAD_ALIGNS[a], 64);
            fails += check(ALL_KINDS[i].name, BAD_ALIGNS[a], rc, m, errno);
        }
    }
    for (unsigned a = 0; a < NUM_BAD; a++) {
        void *m = SENTINEL;
        errno = 77;
        int rc = hbw_posix_memalign(&m, BAD_ALIGNS[a], 64);
        fails += check("hbw_posix_memalign", BAD_ALIGNS[a], rc, m, errno);
        m = SENTINEL;
        errno = 77;
        rc = hbw_posix_memalign_psize(&m, BAD_ALIGNS[a], 64, HBW_PAGESIZE_4KB);
        fails += check("hbw_posix_memalign_psize 4KB", BAD_ALIGNS[a], rc, m, errno);
    }
    printf("fails=%d\n", fails);
    return fails ? 1 : 0;
}
