/* memkind-rs: memkind 1.14's memory tiering interface (ABI compatible with libmemkind.so.0 1.14).
 * SPDX-License-Identifier: BSD-2-Clause */
#ifndef MEMKIND_RS_MEMKIND_MEMTIER_H
#define MEMKIND_RS_MEMKIND_MEMTIER_H

#ifdef __cplusplus
extern "C" {
#endif

#include <memkind.h>
#include <stdlib.h>

/* Opaque handles. */
struct memtier_builder;
struct memtier_memory;

/* How a memory spreads allocations over its tiers. */
typedef enum memtier_policy_t {
    /* Keep the tiers' allocated bytes in the ratio given to memtier_builder_add_tier(). */
    MEMTIER_POLICY_STATIC_RATIO = 0,
    /* Size thresholds between neighbouring tiers, moved to keep the ratio. */
    MEMTIER_POLICY_DYNAMIC_THRESHOLD = 1,
    MEMTIER_POLICY_MAX_VALUE
} memtier_policy_t;

/* Builders: NULL for an unknown policy. */
struct memtier_builder *memtier_builder_new(memtier_policy_t policy);
void memtier_builder_delete(struct memtier_builder *builder);
/* 0 on success, -1 for a bad kind, a kind added already or ratio 0. */
int memtier_builder_add_tier(struct memtier_builder *builder, memkind_t kind,
                             unsigned kind_ratio);
/* A memory with a copy of the builder's configuration, or NULL. */
struct memtier_memory *
memtier_builder_construct_memtier_memory(struct memtier_builder *builder);
void memtier_delete_memtier_memory(struct memtier_memory *memory);

/* Allocation from a memory (the policy picks the tier) or from one kind. */
void *memtier_malloc(struct memtier_memory *memory, size_t size);
void *memtier_kind_malloc(memkind_t kind, size_t size);
void *memtier_calloc(struct memtier_memory *memory, size_t num, size_t size);
void *memtier_kind_calloc(memkind_t kind, size_t num, size_t size);
void *memtier_realloc(struct memtier_memory *memory, void *ptr, size_t size);
void *memtier_kind_realloc(memkind_t kind, void *ptr, size_t size);
int memtier_posix_memalign(struct memtier_memory *memory, void **memptr,
                           size_t alignment, size_t size);
int memtier_kind_posix_memalign(memkind_t kind, void **memptr, size_t alignment,
                                size_t size);
size_t memtier_usable_size(void *ptr);
void memtier_kind_free(memkind_t kind, void *ptr);

/* Free a block of any kind allocated through memtier. */
static inline void memtier_free(void *ptr)
{
    memtier_kind_free(NULL, ptr);
}

/* Bytes (usable sizes) allocated through memtier in kind and not freed. */
size_t memtier_kind_allocated_size(memkind_t kind);

/* Set a builder property (memtier(3)): policy.dynamic_threshold.thresholds[ID].val|min|max
 * (size_t), .check_cnt (unsigned), .trigger and .degree (float). 0 on success, -1 otherwise. */
int memtier_ctl_set(struct memtier_builder *builder, const char *name,
                    const void *val);

#ifdef __cplusplus
}
#endif
#endif /* MEMKIND_RS_MEMKIND_MEMTIER_H */
