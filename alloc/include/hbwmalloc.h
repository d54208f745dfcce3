/* memkind-rs: memkind 1.14's high-bandwidth memory interface.
 * SPDX-License-Identifier: BSD-2-Clause */
#ifndef MEMKIND_RS_HBWMALLOC_H
#define MEMKIND_RS_HBWMALLOC_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdlib.h>

typedef enum {
    HBW_POLICY_BIND = 1,
    HBW_POLICY_PREFERRED = 2,
    HBW_POLICY_INTERLEAVE = 3,
    HBW_POLICY_BIND_ALL = 4,
} hbw_policy_t;

typedef enum {
    HBW_PAGESIZE_4KB = 1,
    HBW_PAGESIZE_2MB = 2,
    HBW_PAGESIZE_1GB_STRICT = 3,
    HBW_PAGESIZE_1GB = 4,
    HBW_PAGESIZE_MAX_VALUE
} hbw_pagesize_t;

enum {
    HBW_TOUCH_PAGES = (1 << 0)
};

hbw_policy_t hbw_get_policy(void);
int hbw_set_policy(hbw_policy_t mode);
int hbw_check_available(void);
int hbw_verify_memory_region(void *addr, size_t size, int flags);
void *hbw_malloc(size_t size);
void *hbw_calloc(size_t num, size_t size);
int hbw_posix_memalign(void **memptr, size_t alignment, size_t size);
int hbw_posix_memalign_psize(void **memptr, size_t alignment, size_t size,
                             hbw_pagesize_t pagesize);
void *hbw_realloc(void *ptr, size_t size);
void hbw_free(void *ptr);
size_t hbw_malloc_usable_size(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* MEMKIND_RS_HBWMALLOC_H */
