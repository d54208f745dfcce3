/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stock.bpf.c: Intel's memkind 1.14 (Debian's libmemkind.so.0), which has no counters of its
 * own: per-call uprobes + uretprobes on memkind_malloc, _calloc, _posix_memalign, _realloc and
 * _free count exactly per (tgid, kind); bytes freed come from a bounded map of live blocks
 * (pointer -> size, kind), as BCC's memleak does (misses counted). A trap per call: slow.
 *
 * Kinds are named from memkind 1.14's struct memkind (include/memkind/internal/
 * memkind_private.h): { struct memkind_ops *ops; unsigned int partition; char name[64]; ... },
 * announced as MKB_EV_KIND records on a kind's first call in a process.
 */
#define MKB_PROCESS_PROGS
#include "calls.h"

/* Also emit one MKB_EV_CALL record per call (trace mode). */
const volatile bool cfg_trace = false;

#define STOCK_KIND_PARTITION_OFF 8
#define STOCK_KIND_NAME_OFF 12

/* Not preallocated: cheap to load; entries are made once per process and kind. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 16384);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct mkb_key);
    __type(value, struct mkp_counters);
} counters SEC(".maps");

/* A zeroed struct mkp_counters to create entries from (never written). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct mkp_counters);
} zero_counters SEC(".maps");

struct live_key {
    __u32 tgid;
    __u32 pad;
    __u64 ptr;
};

struct live_block {
    __u64 size;
    __u32 kind;
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1 << 20);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct live_key);
    __type(value, struct live_block);
} live SEC(".maps");

struct kind_key {
    __u32 tgid;
    __u32 kind;
};

/* (tgid, partition) already announced. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, struct kind_key);
    __type(value, __u8);
} kinds_seen SEC(".maps");

static __always_inline __u32 size_bucket(__u64 n)
{
    __u32 b;

    for (b = 0; b < MKP_SIZE_BUCKETS - 1; b++)
        if (n <= (16ULL << b))
            break;
    return b;
}

static __always_inline struct mkp_counters *counters_of(__u32 tgid, __u32 kind)
{
    struct mkb_key k = { .tgid = tgid, .kind = kind, .arena = MKP_NONE };
    struct mkp_counters *c = bpf_map_lookup_elem(&counters, &k), *zero;
    __u32 z = 0;

    if (c)
        return c;
    zero = bpf_map_lookup_elem(&zero_counters, &z);
    if (!zero)
        return 0;
    bpf_map_update_elem(&counters, &k, zero, BPF_NOEXIST);
    c = bpf_map_lookup_elem(&counters, &k);
    if (!c)
        stat_inc(MKB_STAT_MAP_FULL);
    return c;
}

static __always_inline void count_request(struct mkp_counters *c, __u64 size)
{
    __sync_fetch_and_add(&c->bytes_requested, size);
    __sync_fetch_and_add(&c->bytes_allocated, size);
    __sync_fetch_and_add(&c->size_buckets[size_bucket(size) & (MKP_SIZE_BUCKETS - 1)], 1);
}

static __always_inline void live_add(__u32 tgid, __u64 ptr, __u64 size, __u32 kind)
{
    struct live_key k = { .tgid = tgid, .ptr = ptr };
    struct live_block b = { .size = size, .kind = kind };

    if (bpf_map_update_elem(&live, &k, &b, BPF_ANY))
        stat_inc(MKB_STAT_LIVE_FULL);
}

/* Remove ptr from the live blocks; its size (0 on a miss) and, when *kind is MKP_NONE, its kind. */
static __always_inline __u64 live_take(__u32 tgid, __u64 ptr, __u32 *kind)
{
    struct live_key k = { .tgid = tgid, .ptr = ptr };
    struct live_block *b = bpf_map_lookup_elem(&live, &k);
    __u64 size;

    if (!b) {
        stat_inc(MKB_STAT_LIVE_MISS);
        return 0;
    }
    size = b->size;
    /* The owner decides (memkind 1.14 frees through the pointer's own kind too). */
    *kind = b->kind;
    bpf_map_delete_elem(&live, &k);
    return size;
}

static __always_inline __u32 kind_partition(__u32 tgid, __u64 kind)
{
    struct kind_key kk = { .tgid = tgid };
    struct mkb_kind_ev *e;
    __u32 part;
    __u8 one = 1;

    if (!kind || bpf_probe_read_user(&part, sizeof(part), (const void *)(kind + STOCK_KIND_PARTITION_OFF)))
        return MKP_NONE;
    kk.kind = part;
    if (bpf_map_lookup_elem(&kinds_seen, &kk))
        return part;
    if (bpf_map_update_elem(&kinds_seen, &kk, &one, BPF_NOEXIST))
        return part;
    e = RB_RESERVE(struct mkb_kind_ev);
    if (!e)
        return part;
    __builtin_memset(&e->rec, 0, sizeof(e->rec));
    fill_hdr(&e->hdr, MKB_EV_KIND, tgid);
    e->rec.version = MKP_VERSION;
    e->rec.op = MKP_KIND_ANNOUNCE;
    e->rec.kind = part;
    e->rec.mbind_mode = -1;
    bpf_probe_read_user_str(e->rec.name, sizeof(e->rec.name), (const void *)(kind + STOCK_KIND_NAME_OFF));
    bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return part;
}

static __always_inline int call_exit(__u32 call, long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tgid = id >> 32, part, freed_kind;
    struct mkp_counters *c;
    struct mkb_pending p;
    struct mkb_args a;
    __u64 result, old, req;

    if (!call_return(id, call, &p))
        return 0;
    decode_args(&p, &a);
    result = call_result(&p, &a, ret);
    part = kind_partition(tgid, a.kind);
    switch (call) {
    case MKB_CALL_MALLOC:
    case MKB_CALL_CALLOC:
    case MKB_CALL_POSIX_MEMALIGN:
        if (!result)
            break;
        req = call == MKB_CALL_CALLOC ? a.size * a.num : a.size;
        c = counters_of(tgid, part);
        if (c) {
            __sync_fetch_and_add(&c->allocs, 1);
            count_request(c, req);
        }
        live_add(tgid, result, req, part);
        break;
    case MKB_CALL_REALLOC:
        if (!a.ptr) {
            if (!result)
                break;
            c = counters_of(tgid, part);
            if (c) {
                __sync_fetch_and_add(&c->allocs, 1);
                count_request(c, a.size);
            }
            live_add(tgid, result, a.size, part);
        } else if (!a.size) {
            freed_kind = part;
            old = live_take(tgid, a.ptr, &freed_kind);
            c = counters_of(tgid, freed_kind);
            if (c) {
                __sync_fetch_and_add(&c->frees, 1);
                __sync_fetch_and_add(&c->bytes_freed, old);
            }
        } else if (result) {
            freed_kind = part;
            old = live_take(tgid, a.ptr, &freed_kind);
            if (part == MKP_NONE)
                part = freed_kind;
            c = counters_of(tgid, part);
            if (c) {
                __sync_fetch_and_add(&c->reallocs, 1);
                __sync_fetch_and_add(&c->bytes_freed, old);
                count_request(c, a.size);
            }
            live_add(tgid, result, a.size, part);
        }
        break;
    case MKB_CALL_FREE:
        if (!a.ptr)
            break;
        freed_kind = part;
        old = live_take(tgid, a.ptr, &freed_kind);
        c = counters_of(tgid, freed_kind);
        if (c) {
            __sync_fetch_and_add(&c->frees, 1);
            __sync_fetch_and_add(&c->bytes_freed, old);
        }
        break;
    }
    if (cfg_trace)
        emit_call(id, &p, &a, result, ret, part);
    return 0;
}

MKB_CALL_PROGS(mkb_malloc, MKB_CALL_MALLOC)
MKB_CALL_PROGS(mkb_calloc, MKB_CALL_CALLOC)
MKB_CALL_PROGS(mkb_posix_memalign, MKB_CALL_POSIX_MEMALIGN)
MKB_CALL_PROGS(mkb_realloc, MKB_CALL_REALLOC)
MKB_CALL_PROGS(mkb_free, MKB_CALL_FREE)
