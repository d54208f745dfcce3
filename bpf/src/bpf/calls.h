/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * calls.h: the per-call probes (stock.bpf.c on memkind 1.14's memkind_* API, trace.bpf.c on the
 * memkind_arena_* functions of a library of ours from before memkind_arena_trace_event, which
 * needs no pairing: one record per call). An entry uprobe saves the call's arguments in a per-thread
 * hash; the matching uretprobe pairs them with the result. Nested probed calls (memkind 1.14's
 * realloc(p, 0) frees through memkind_free) only deepen the outermost call's entry: one call
 * made by the program is one event.
 */
#ifndef MKB_CALLS_H
#define MKB_CALLS_H

#include "common.h"

struct mkb_pending {
    __u64 ts;
    __u32 call;
    __u32 depth;
    __u64 a0, a1, a2, a3;
    __u64 ip; /* the probed address (the kernel sets ip to it for the handlers) */
};

/* pid_tgid -> the thread's outermost probed call in progress. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct mkb_pending);
} pending SEC(".maps");

/* A call's arguments by meaning. */
struct mkb_args {
    __u64 kind, size, num, align, ptr, memptr;
};

static __always_inline int call_enter(struct pt_regs *ctx, __u32 call)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct mkb_pending *p, n = {};

    if (!lib_traced(id >> 32))
        return 0;
    p = bpf_map_lookup_elem(&pending, &id);
    if (p) {
        p->depth++;
        return 0;
    }
    n.ts = bpf_ktime_get_ns();
    n.call = call;
    n.depth = 1;
    n.a0 = PT_REGS_PARM1(ctx);
    n.a1 = PT_REGS_PARM2(ctx);
    n.a2 = PT_REGS_PARM3(ctx);
    n.a3 = PT_REGS_PARM4(ctx);
    n.ip = PT_REGS_IP(ctx);
    if (bpf_map_update_elem(&pending, &id, &n, BPF_ANY))
        stat_inc(MKB_STAT_MAP_FULL);
    return 0;
}

/* True, with *out filled, when this return ends the thread's outermost call. */
static __always_inline bool call_return(__u64 id, __u32 call, struct mkb_pending *out)
{
    struct mkb_pending *p = bpf_map_lookup_elem(&pending, &id);

    if (!p)
        return false; /* the entry was filtered out, or happened before attach */
    if (p->depth > 1) {
        p->depth--;
        return false;
    }
    __builtin_memcpy(out, p, sizeof(*out));
    bpf_map_delete_elem(&pending, &id);
    if (out->call != call) {
        stat_inc(MKB_STAT_UNPAIRED);
        return false;
    }
    return true;
}

static __always_inline void decode_args(const struct mkb_pending *c, struct mkb_args *a)
{
    a->kind = a->size = a->num = a->align = a->ptr = a->memptr = 0;
    switch (c->call) {
    case MKB_CALL_MALLOC:
        a->kind = c->a0;
        a->size = c->a1;
        break;
    case MKB_CALL_CALLOC:
    case MKB_CALL_PMEM_CALLOC:
        a->kind = c->a0;
        a->num = c->a1;
        a->size = c->a2;
        break;
    case MKB_CALL_POSIX_MEMALIGN:
        a->kind = c->a0;
        a->memptr = c->a1;
        a->align = c->a2;
        a->size = c->a3;
        break;
    case MKB_CALL_REALLOC:
        a->kind = c->a0;
        a->ptr = c->a1;
        a->size = c->a2;
        break;
    case MKB_CALL_REALLOC_DETECT:
        a->ptr = c->a0;
        a->size = c->a1;
        break;
    case MKB_CALL_FREE:
        a->kind = c->a0;
        a->ptr = c->a1;
        break;
    case MKB_CALL_FREE_DETECT:
        a->ptr = c->a0;
        break;
    }
}

/* The pointer a call handed out (0 when none): posix_memalign's *memptr on success. */
static __always_inline __u64 call_result(const struct mkb_pending *c, const struct mkb_args *a,
                                         long ret)
{
    __u64 p = 0;

    switch (c->call) {
    case MKB_CALL_POSIX_MEMALIGN:
        if ((int)ret == 0 && a->memptr)
            bpf_probe_read_user(&p, sizeof(p), (const void *)a->memptr);
        return p;
    case MKB_CALL_FREE:
    case MKB_CALL_FREE_DETECT:
        return 0;
    default:
        return (__u64)ret;
    }
}

/* Emit one call record. */
static __always_inline void emit_call(__u64 id, const struct mkb_pending *c, const struct mkb_args *a,
                                      __u64 result, long ret, __u32 kind_id)
{
    struct mkb_call_ev *e = RB_RESERVE(struct mkb_call_ev);

    if (!e)
        return;
    e->hdr.type = MKB_EV_CALL;
    e->hdr.tgid = id >> 32;
    e->hdr.ts_ns = c->ts;
    e->tid = (__u32)id;
    e->call = c->call;
    e->kind = a->kind;
    e->size = a->size;
    e->num = a->num;
    e->align = a->align;
    e->ptr = a->ptr;
    e->result = result;
    e->ret = c->call == MKB_CALL_POSIX_MEMALIGN ? (int)ret : 0;
    e->latency_ns = bpf_ktime_get_ns() - c->ts;
    e->kind_id = kind_id;
    e->pad = 0;
    bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* One entry and one return program per probed function (no BPF cookies before 5.15). */
#define MKB_CALL_PROGS(name, id)                                                               \
    SEC("uprobe")                                                                              \
    int BPF_UPROBE(name##_enter)                                                               \
    {                                                                                          \
        return call_enter(ctx, id);                                                            \
    }                                                                                          \
    SEC("uretprobe")                                                                           \
    int BPF_URETPROBE(name##_return, long ret)                                                 \
    {                                                                                          \
        return call_exit(id, ret);                                                             \
    }

#endif /* MKB_CALLS_H */
