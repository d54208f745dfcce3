// Loads a libmemkind.so with dlopen() (as JNI libraries, ctypes or plugins do), allocates and
// frees from MEMKIND_DEFAULT and MEMKIND_REGULAR in the main thread and in a new thread.
// Usage: dlopen LIBRARY. Prints "ok" and exits 0, or the failure and exits 1.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef void *(*malloc_fn)(void *, size_t);
typedef void (*free_fn)(void *, void *);
static malloc_fn mk_malloc;
static free_fn mk_free;
static void **kinds[2];

static void *work(void *arg) {
    (void)arg;
    for (int k = 0; k < 2; k++) {
        for (size_t size = 16; size <= (1 << 20); size *= 4) {
            char *p = mk_malloc(*kinds[k], size);
            if (!p)
                return "memkind_malloc returned NULL";
            memset(p, 0x5a, size);
            mk_free(NULL, p);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen LIBRARY\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    mk_malloc = (malloc_fn)dlsym(h, "memkind_malloc");
    mk_free = (free_fn)dlsym(h, "memkind_free");
    kinds[0] = dlsym(h, "MEMKIND_DEFAULT");
    kinds[1] = dlsym(h, "MEMKIND_REGULAR");
    if (!mk_malloc || !mk_free || !kinds[0] || !kinds[1]) {
        printf("dlsym: %s\n", dlerror());
        return 1;
    }
    const char *err = work(NULL);
    if (!err) {
        pthread_t t;
        void *res;
        if (pthread_create(&t, NULL, work, NULL) != 0 || pthread_join(t, &res) != 0)
            err = "pthread failed";
        else
            err = res;
    }
    if (err) {
        printf("%s\n", err);
        return 1;
    }
    printf("ok\n");
    return 0;
}
