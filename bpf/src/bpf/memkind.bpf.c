/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * memkind.bpf.c: the default, near-zero-cost tier for memkind-rs.
 *
 * The library keeps exact per-thread counters while the semaphore is on and hands them over in
 * batches through memkind_arena_stats_flush(); rare events (extents, kinds) come through
 * memkind_arena_extent_event() / memkind_arena_kind_event(). Page faults of traced processes
 * are attributed to kind and arena through a map of 2 MiB granules kept from the extent events.
 */
#define MKB_PROCESS_PROGS
#include "common.h"

/* Also copy every flush into the ring buffer (record mode). */
const volatile bool cfg_record = false;

/* Per-CPU hashes are not preallocated: preallocation costs tens of ms at load, and their
 * entries are made rarely (once per process, kind and arena). */

/* (tgid, kind, arena) -> the sum of the flushed deltas, per CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 16384);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct mkb_key);
    __type(value, struct mkp_counters);
} counters SEC(".maps");

/* (tgid, granule) -> the kind and arena the granule belongs to. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct mkb_granule_key);
    __type(value, struct mkb_granule);
} granules SEC(".maps");

/* (tgid, kind, arena) -> user page faults in the kind's granules, per CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 16384);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct mkb_key);
    __type(value, __u64);
} faults SEC(".maps");

/* tgid -> user page faults outside every kind's granules, per CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 8192);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, __u64);
} other_faults SEC(".maps");

/* A thread's granule update in progress: MKB_GRANULE_CHUNK granules per program run, the rest
 * through tail calls to mkb_granules (keyed by thread: a preempted run keeps its state). */
struct granule_job {
    __u64 next, end;
    struct mkb_granule g;
    __u32 tgid;
    __u32 op;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u64);
    __type(value, struct granule_job);
} granule_jobs SEC(".maps");

static __always_inline void granule_chunk(void *ctx, __u64 id, struct granule_job *j);

#define MKB_COUNTER_WORDS (sizeof(struct mkp_counters) / sizeof(__u64))

SEC("uprobe")
int BPF_UPROBE(mkb_stats_flush, const struct mkp_flush *rec)
{
    struct mkp_flush f;
    struct mkb_key k;
    struct mkp_counters *c;
    __u32 tgid = current_tgid();

    if (!lib_traced(tgid) || !rec_on_stack(ctx, rec))
        return 0;
    if (bpf_probe_read_user(&f, sizeof(f), rec)) {
        stat_inc(MKB_STAT_READ_FAULT);
        return 0;
    }
    k.tgid = tgid;
    k.kind = f.kind;
    k.arena = f.arena;
    c = bpf_map_lookup_elem(&counters, &k);
    if (!c) {
        if (!bpf_map_update_elem(&counters, &k, &f.delta, BPF_NOEXIST))
            goto record;
        c = bpf_map_lookup_elem(&counters, &k);
        if (!c) {
            stat_inc(MKB_STAT_MAP_FULL);
            goto record;
        }
    }
    {
        __u64 *dst = (__u64 *)c, *src = (__u64 *)&f.delta;

#pragma unroll
        for (int i = 0; i < MKB_COUNTER_WORDS; i++)
            __sync_fetch_and_add(&dst[i], src[i]);
    }
record:
    if (cfg_record) {
        struct mkb_flush_ev *e = RB_RESERVE(struct mkb_flush_ev);

        if (e) {
            fill_hdr(&e->hdr, MKB_EV_FLUSH, tgid);
            __builtin_memcpy(&e->rec, &f, sizeof(f));
            bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
        }
    }
    return 0;
}

SEC("uprobe")
int BPF_UPROBE(mkb_extent_event, const struct mkp_extent *ev)
{
    struct mkp_extent x;
    struct granule_job job = {}, *j;
    struct mkb_extent_ev *e;
    __u64 first, end, id = bpf_get_current_pid_tgid();
    __u32 tgid = id >> 32;

    if (!lib_traced(tgid) || !rec_on_stack(ctx, ev))
        return 0;
    if (bpf_probe_read_user(&x, sizeof(x), ev)) {
        stat_inc(MKB_STAT_READ_FAULT);
        return 0;
    }
    e = RB_RESERVE(struct mkb_extent_ev);
    if (e) {
        fill_hdr(&e->hdr, MKB_EV_EXTENT, tgid);
        __builtin_memcpy(&e->rec, &x, sizeof(x));
        bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    if (x.op != MKP_EXTENT_ALLOC && x.op != MKP_EXTENT_ANNOUNCE && x.op != MKP_EXTENT_UNMAP)
        return 0;
    first = x.addr >> MKB_GRANULE_SHIFT;
    end = (x.addr + x.size + (1ULL << MKB_GRANULE_SHIFT) - 1) >> MKB_GRANULE_SHIFT;
    if (!x.size)
        return 0;
    if (end - first > MKB_MAX_GRANULES) {
        stat_inc(MKB_STAT_GRANULE_OVERFLOW);
        end = first + MKB_MAX_GRANULES;
    }
    job.next = first;
    job.end = end;
    job.g.kind = x.kind;
    job.g.arena = x.arena;
    job.g.backing = x.backing;
    job.g.mbind_mode = x.mbind_mode;
    job.tgid = tgid;
    job.op = x.op;
    if (bpf_map_update_elem(&granule_jobs, &id, &job, BPF_ANY)) {
        stat_inc(MKB_STAT_MAP_FULL);
        return 0;
    }
    j = bpf_map_lookup_elem(&granule_jobs, &id);
    if (j)
        granule_chunk(ctx, id, j);
    return 0;
}

/* The granules' tail-call target: one more chunk of the thread's job. */
SEC("uprobe")
int mkb_granules(struct pt_regs *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct granule_job *j = bpf_map_lookup_elem(&granule_jobs, &id);

    if (j)
        granule_chunk(ctx, id, j);
    return 0;
}

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __uint(key_size, sizeof(__u32)); /* no BTF key: the kernel takes none for a PROG_ARRAY */
    __array(values, int(struct pt_regs *));
} granule_tail SEC(".maps") = {
    .values = { [0] = (void *)&mkb_granules },
};

static __always_inline void granule_chunk(void *ctx, __u64 id, struct granule_job *j)
{
    struct mkb_granule_key gk = {};
    struct mkb_granule g = j->g;
    __u64 next = j->next, end = j->end;
    bool add = j->op != MKP_EXTENT_UNMAP;

    gk.tgid = j->tgid;
    /* Two loops without branches on results: the verifier walks each iteration once. */
    if (add) {
        long err = 0;

        for (__u32 i = 0; i < MKB_GRANULE_CHUNK; i++) {
            if (next + i >= end)
                break;
            gk.granule = next + i;
            err |= bpf_map_update_elem(&granules, &gk, &g, BPF_ANY);
        }
        if (err)
            stat_inc(MKB_STAT_MAP_FULL);
    } else {
        for (__u32 i = 0; i < MKB_GRANULE_CHUNK; i++) {
            if (next + i >= end)
                break;
            gk.granule = next + i;
            bpf_map_delete_elem(&granules, &gk);
        }
    }
    next += MKB_GRANULE_CHUNK;
    if (next < end) {
        j->next = next;
        bpf_tail_call(ctx, &granule_tail, 0);
        /* Only reached when the tail call fails (the chain limit): the rest is unattributed. */
        stat_inc(MKB_STAT_GRANULE_OVERFLOW);
    }
    bpf_map_delete_elem(&granule_jobs, &id);
}

SEC("uprobe")
int BPF_UPROBE(mkb_kind_event, const struct mkp_kind *ev)
{
    struct mkb_kind_ev *e;
    __u32 tgid = current_tgid();

    if (!lib_traced(tgid) || !rec_on_stack(ctx, ev))
        return 0;
    e = RB_RESERVE(struct mkb_kind_ev);
    if (!e)
        return 0;
    if (bpf_probe_read_user(&e->rec, sizeof(e->rec), ev)) {
        stat_inc(MKB_STAT_READ_FAULT);
        bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
        return 0;
    }
    fill_hdr(&e->hdr, MKB_EV_KIND, tgid);
    bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(mkb_page_fault, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
    struct mkb_granule_key gk = {};
    struct mkb_granule *g;
    struct mkb_key k;
    __u32 tgid = current_tgid();

    /* The granule first: granules exist only for traced processes (and go with their exit),
     * so a fault in kind memory, the common case, costs two map lookups, not three. */
    gk.tgid = tgid;
    gk.granule = address >> MKB_GRANULE_SHIFT;
    g = bpf_map_lookup_elem(&granules, &gk);
    if (!g) {
        if (tgid_traced(tgid))
            pcpu_inc(&other_faults, &tgid);
        return 0;
    }
    if (!cgroup_ok())
        return 0;
    k.tgid = tgid;
    k.kind = g->kind;
    k.arena = g->arena;
    pcpu_inc(&faults, &k);
    return 0;
}
