/* OURS ONLY (memkind 1.14 reads out of bounds for pointers it never handed out).
 * Correct behaviour for a pointer memkind did not allocate (stack, static, glibc malloc, mmap):
 *   detect   memkind_detect_kind returns MEMKIND_DEFAULT without crashing
 *   usable   memkind_malloc_usable_size(NULL, p) returns without crashing
 *   free     memkind_free(NULL, p) returns without crashing (the foreign block is left alone)
 * usage: ours_only_foreign_ptr detect|usable|free. Exit 0 when all hold, 1 otherwise.
 */
#include "common.h"
#include <malloc.h>
#include <sys/mman.h>

static char static_buf[256];

int main(int argc, char **argv)
{
    setup_stdout();
    const char *mode = argc > 1 ? argv[1] : "detect";
    char stack_buf[256];
    /* glibc's malloc is reached through __libc_malloc so that no interposer changes it. */
    extern void *__libc_malloc(size_t);
    void *heap = __libc_malloc(100);
    void *big = __libc_malloc(1 << 20);
    char *map = mmap(NULL, 1 << 21, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct {
        const char *name;
        void *p;
    } ptrs[] = {{"stack", stack_buf},  {"stack+13", stack_buf + 13}, {"static", static_buf},
                {"glibc_small", heap}, {"glibc_big", big},           {"mmap", map},
                {"mmap_mid", map + (1 << 20) + 24}};
    int fails = 0;
    for (unsigned i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) {
        if (strcmp(mode, "detect") == 0) {
            memkind_t k = memkind_detect_kind(ptrs[i].p);
            int ok = k == MEMKIND_DEFAULT;
            printf("detect %s -> %s %s\n", ptrs[i].name, kind_name(k), ok ? "ok" : "FAIL");
            fails += !ok;
        } else if (strcmp(mode, "usable") == 0) {
            (void)memkind_malloc_usable_size(NULL, ptrs[i].p);
            printf("usable %s returned ok\n", ptrs[i].name);
        } else if (strcmp(mode, "free") == 0) {
            memkind_free(NULL, ptrs[i].p);
            printf("free %s returned ok\n", ptrs[i].name);
        } else {
            printf("bad mode\n");
            return 2;
        }
    }
    /* memkind still works afterwards and the foreign blocks are intact/usable. */
    void *p = memkind_malloc(MEMKIND_DEFAULT, 64);
    memset(map, 1, 4096);
    memset(stack_buf, 2, sizeof stack_buf);
    printf("after: malloc_ok=%d\n", p != NULL);
    fails += p == NULL;
    memkind_free(MEMKIND_DEFAULT, p);
    printf("fails=%d\n", fails);
    return fails ? 1 : 0;
}
