/* OURS ONLY (memkind 1.14 is buggy here: it does not check num*size for overflow on non-default
 * kinds and hands out a small block). Correct behaviour: calloc whose num*size overflows size_t
 * returns NULL with errno ENOMEM, for every available kind, and hbw_calloc likewise.
 * Exit 0 when all hold, 1 otherwise.
 */
#include "common.h"
#include <hbwmalloc.h>

int main(void)
{
    setup_stdout();
    static const struct {
        size_t num, size;
    } cases[] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {(size_t)1 << 33, (size_t)1 << 33},
        {SIZE_MAX, SIZE_MAX}, {SIZE_MAX / 16 + 1, 16},
    };
    int fails = 0;
    for (int i = 0; i < NUM_KINDS; i++) {
        memkind_t k = *ALL_KINDS[i].kind;
        if (memkind_check_available(k) != 0)
            continue;
        for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            errno = 0;
            void *p = memkind_calloc(k, cases[c].num, cases[c].size);
            int e = errno;
            int ok = p == NULL && e == ENOMEM;
            printf("%s calloc(%zu, %zu) null=%d errno=%s %s\n", ALL_KINDS[i].name, cases[c].num,
                   cases[c].size, p == NULL, errno_name(e), ok ? "ok" : "FAIL");
            fails += !ok;
            /* never free p: on failure it is a too-small block of unknown size */
        }
    }
    errno = 0;
    void *h = hbw_calloc(SIZE_MAX / 2 + 1, 2);
    int e = errno;
    int ok = h == NULL && e == ENOMEM;
    printf("hbw_calloc overflow null=%d errno=%s %s\n", h == NULL, errno_name(e), ok ? "ok" : "FAIL");
    fails += !ok;
    printf("fails=%d\n", fails);
    return fails ? 1 : 0;
}
