/* Harness helper, not compared: prints the path of the object that defines memkind_malloc, so
 * the test can prove which libmemkind.so.0 a run loaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <memkind.h>
#include <stdio.h>

int main(void)
{
    Dl_info info;
    if (!dladdr((void *)&memkind_malloc, &info) || !info.dli_fname) {
        printf("dladdr failed\n");
        return 1;
    }
    printf("%s\n", info.dli_fname);
    return 0;
}
