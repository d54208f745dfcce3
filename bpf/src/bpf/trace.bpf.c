/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * trace.bpf.c: the exact per-call tier on memkind-rs's exported memkind_arena_* functions.
 * Loaded next to memkind.bpf.c, whose "traced", "events" and "stats" maps it reuses: one
 * filter, one ring buffer.
 *
 * A library that exports memkind_arena_trace_event times each traced call itself and hands
 * one struct mkp_trace to that function: mkb_trace_event, the only uprobe of the tier, copies
 * it into the ring buffer (one uprobe hit per call). Older libraries of ours: a uprobe and a
 * uretprobe on every entry point (the MKB_CALL_PROGS below).
 *
 * Kind ids: memkind-rs keeps every kind in one table of 128-byte slots indexed by id (alloc/src/
 * kind/mod.rs), each starting with 1.14's struct memkind fields (ops, then the partition, which
 * is the id), and the exported MEMKIND_DEFAULT holds the address of slot 0. The library's load bias is the probed
 * address minus the function's address in the file, so the table is read from the process at
 * the call (it may be gone by the time user space sees the event).
 */
#include "calls.h"

/* Addresses in the file (before the load bias), set by user space; 0: unknown. */
const volatile __u64 cfg_func_vaddr[MKB_CALL_N] = {};
const volatile __u64 cfg_default_vaddr = 0;
#define OURS_KIND_STRIDE 128
#define OURS_KIND_PARTITION_OFF 8
#define OURS_MAX_KINDS 4096

static __always_inline __u32 ours_kind_id(const struct mkb_pending *c, __u64 kind)
{
    __u64 fv, bias, table, off;

    if (!kind || !cfg_default_vaddr || c->call >= MKB_CALL_N)
        return MKP_NONE;
    fv = cfg_func_vaddr[c->call];
    if (!fv)
        return MKP_NONE;
    bias = (c->ip - fv) & ~0xfffULL;
    if (bpf_probe_read_user(&table, sizeof(table), (const void *)(bias + cfg_default_vaddr)))
        return MKP_NONE;
    off = kind - table;
    if (kind < table || off % OURS_KIND_STRIDE || off / OURS_KIND_STRIDE >= OURS_MAX_KINDS)
        return MKP_NONE;
    /* The slot names its own id: a layout that no longer matches gives no id, not a wrong one. */
    __u32 part;
    if (bpf_probe_read_user(&part, sizeof(part), (const void *)(kind + OURS_KIND_PARTITION_OFF)) ||
        part != off / OURS_KIND_STRIDE)
        return MKP_NONE;
    return part;
}

static __always_inline int call_exit(__u32 call, long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct mkb_pending c;
    struct mkb_args a;

    if (!call_return(id, call, &c))
        return 0;
    decode_args(&c, &a);
    emit_call(id, &c, &a, call_result(&c, &a, ret), ret, ours_kind_id(&c, a.kind));
    return 0;
}

/* Above this much unread data in the ring buffer a record wakes the consumer up; below, none
 * does (it polls on a timer): no wakeup per record, and a burst does not fill the ring before
 * the next poll. */
#define MKB_WAKEUP_BYTES (1 << 20)
/* bpf_ringbuf_query()'s BPF_RB_AVAIL_DATA (uapi linux/bpf.h; not in the trimmed vmlinux.h). */
#define MKB_RB_AVAIL_DATA 0

SEC("uprobe")
int BPF_UPROBE(mkb_trace_event, const struct mkp_trace *ev)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct mkb_call_ev *e;
    struct mkp_trace r;
    __u64 flags;

    if (!lib_traced(id >> 32) || !rec_on_stack(ctx, ev))
        return 0;
    if (bpf_probe_read_user(&r, sizeof(r), ev) || r.version != MKP_VERSION || !r.call ||
        r.call >= MKB_CALL_N) {
        stat_inc(MKB_STAT_READ_FAULT);
        return 0;
    }
    /* The record names the thread that made it: another thread's (registers not the probed
     * thread's, see rec_on_stack) is dropped and counted. 0: not known (a process in another
     * PID namespace, whose ids are not these). */
    if (r.tid && r.tid != (__u32)id) {
        stat_inc(MKB_STAT_BAD_REGS);
        return 0;
    }
    e = RB_RESERVE(struct mkb_call_ev);
    if (!e)
        return 0;
    e->hdr.type = MKB_EV_CALL;
    e->hdr.tgid = id >> 32;
    e->hdr.ts_ns = r.start_ns;
    e->tid = (__u32)id;
    e->call = r.call;
    e->kind = r.kind_ptr;
    e->size = r.size;
    e->num = r.num;
    e->align = r.align;
    e->ptr = r.ptr;
    e->result = r.result;
    e->ret = r.ret;
    e->latency_ns = r.latency_ns;
    e->kind_id = r.kind;
    e->pad = 0;
    flags = bpf_ringbuf_query(&events, MKB_RB_AVAIL_DATA) > MKB_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
                                                                            : BPF_RB_NO_WAKEUP;
    bpf_ringbuf_submit(e, flags);
    return 0;
}

MKB_CALL_PROGS(mkb_malloc, MKB_CALL_MALLOC)
MKB_CALL_PROGS(mkb_calloc, MKB_CALL_CALLOC)
MKB_CALL_PROGS(mkb_pmem_calloc, MKB_CALL_PMEM_CALLOC)
MKB_CALL_PROGS(mkb_posix_memalign, MKB_CALL_POSIX_MEMALIGN)
MKB_CALL_PROGS(mkb_realloc, MKB_CALL_REALLOC)
MKB_CALL_PROGS(mkb_realloc_detect, MKB_CALL_REALLOC_DETECT)
MKB_CALL_PROGS(mkb_free, MKB_CALL_FREE)
MKB_CALL_PROGS(mkb_free_detect, MKB_CALL_FREE_DETECT)
