/* Shared helpers for the differential C programs.
 *
 * Rule for every program: print only deterministic facts (booleans, return codes, errno names,
 * sizes that the API defines, kind names). Never print addresses or timings. Output goes to
 * stdout, line-buffered and flushed, so a crash still leaves the lines printed before it.
 */
#ifndef MEMKIND_DIFF_COMMON_H
#define MEMKIND_DIFF_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <memkind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

struct kind_entry {
    const char *name;
    memkind_t *kind; /* address of the exported global */
};

/* The 26 static kinds (partition order 0..25 where a partition exists) and the 3 GBTLB kinds. */
static const struct kind_entry ALL_KINDS[] = {
    {"MEMKIND_DEFAULT", &MEMKIND_DEFAULT},
    {"MEMKIND_HBW", &MEMKIND_HBW},
    {"MEMKIND_HBW_HUGETLB", &MEMKIND_HBW_HUGETLB},
    {"MEMKIND_HBW_PREFERRED", &MEMKIND_HBW_PREFERRED},
    {"MEMKIND_HBW_PREFERRED_HUGETLB", &MEMKIND_HBW_PREFERRED_HUGETLB},
    {"MEMKIND_HUGETLB", &MEMKIND_HUGETLB},
    {"MEMKIND_HBW_GBTLB", &MEMKIND_HBW_GBTLB},
    {"MEMKIND_HBW_PREFERRED_GBTLB", &MEMKIND_HBW_PREFERRED_GBTLB},
    {"MEMKIND_GBTLB", &MEMKIND_GBTLB},
    {"MEMKIND_HBW_INTERLEAVE", &MEMKIND_HBW_INTERLEAVE},
    {"MEMKIND_INTERLEAVE", &MEMKIND_INTERLEAVE},
    {"MEMKIND_REGULAR", &MEMKIND_REGULAR},
    {"MEMKIND_HBW_ALL", &MEMKIND_HBW_ALL},
    {"MEMKIND_HBW_ALL_HUGETLB", &MEMKIND_HBW_ALL_HUGETLB},
    {"MEMKIND_DAX_KMEM", &MEMKIND_DAX_KMEM},
    {"MEMKIND_DAX_KMEM_ALL", &MEMKIND_DAX_KMEM_ALL},
    {"MEMKIND_DAX_KMEM_PREFERRED", &MEMKIND_DAX_KMEM_PREFERRED},
    {"MEMKIND_DAX_KMEM_INTERLEAVE", &MEMKIND_DAX_KMEM_INTERLEAVE},
    {"MEMKIND_HIGHEST_CAPACITY", &MEMKIND_HIGHEST_CAPACITY},
    {"MEMKIND_HIGHEST_CAPACITY_PREFERRED", &MEMKIND_HIGHEST_CAPACITY_PREFERRED},
    {"MEMKIND_HIGHEST_CAPACITY_LOCAL", &MEMKIND_HIGHEST_CAPACITY_LOCAL},
    {"MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED", &MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED},
    {"MEMKIND_LOWEST_LATENCY_LOCAL", &MEMKIND_LOWEST_LATENCY_LOCAL},
    {"MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED", &MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED},
    {"MEMKIND_HIGHEST_BANDWIDTH_LOCAL", &MEMKIND_HIGHEST_BANDWIDTH_LOCAL},
    {"MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED", &MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED},
};
#define NUM_KINDS ((int)(sizeof(ALL_KINDS) / sizeof(ALL_KINDS[0])))

static inline int is_gbtlb(memkind_t k)
{
    return k == MEMKIND_GBTLB || k == MEMKIND_HBW_GBTLB || k == MEMKIND_HBW_PREFERRED_GBTLB;
}

/* Name of a kind handle: one of the exported globals, "NULL", or "<other>". */
static inline const char *kind_name(memkind_t k)
{
    if (k == NULL)
        return "NULL";
    for (int i = 0; i < NUM_KINDS; i++)
        if (*ALL_KINDS[i].kind == k)
            return ALL_KINDS[i].name;
    return "<other>";
}

static inline const char *errno_name(int e)
{
    switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case ENODEV: return "ENODEV";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case ENOTSUP: return "ENOTSUP";
    case ESRCH: return "ESRCH";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

/* -1, 0 or >0: capacities differ across machines, their sign does not. */
static inline const char *sign_class(ssize_t v)
{
    if (v == -1)
        return "-1";
    if (v == 0)
        return "0";
    if (v > 0)
        return ">0";
    return "<-1";
}

static inline void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(seed + i * 7);
}

static inline int check_fill(const void *p, size_t n, unsigned seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

static inline int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static inline int aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

#define B(x) ((x) ? 1 : 0)

static inline void setup_stdout(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

#endif
