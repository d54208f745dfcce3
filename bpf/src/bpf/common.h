/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * common.h: what every memkind-probe BPF object has: the traced-process filter, the ring
 * buffer, the statistics slots, and (with MKB_PROCESS_PROGS) the fork / exit programs.
 *
 * When two objects are loaded together (memkind + trace), user space makes the second reuse
 * the first one's "traced", "events" and "stats" maps, so there is one filter and one ring.
 *
 * Kernel floor: 5.10 (tp_btf 5.5, ring buffer 5.8, bounded loops 5.3); no BPF cookies, no
 * uprobe.multi, no bpf_loop.
 */
#ifndef MKB_COMMON_H
#define MKB_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load. */
const volatile __u64 cfg_cgroup_id = 0;   /* cgroup v2 id to keep, 0: any */
const volatile bool cfg_all = false;      /* trace every process that calls the library */
const volatile bool cfg_follow_forks = false; /* a traced process's children are traced */

/* Traced processes (tgid -> 1): filled from user space (-p, the spawned child), by fork
 * following, and in "all" mode by the first probe hit. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, __u8);
} traced SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MKB_STAT_N);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 slot)
{
    __u64 *v = bpf_map_lookup_elem(&stats, &slot);

    if (v)
        __sync_fetch_and_add(v, 1);
}

static __always_inline bool cgroup_ok(void)
{
    return !cfg_cgroup_id || bpf_get_current_cgroup_id() == cfg_cgroup_id;
}

/* A process seen by a probe in the library: traced if in the map, or added in "all" mode. */
static __always_inline bool lib_traced(__u32 tgid)
{
    __u8 one = 1;

    if (!cgroup_ok())
        return false;
    if (bpf_map_lookup_elem(&traced, &tgid))
        return true;
    if (!cfg_all)
        return false;
    if (bpf_map_update_elem(&traced, &tgid, &one, BPF_ANY))
        stat_inc(MKB_STAT_MAP_FULL);
    return true;
}

/* A process seen by a kernel event: traced only if already in the map. */
static __always_inline bool tgid_traced(__u32 tgid)
{
    return bpf_map_lookup_elem(&traced, &tgid) && cgroup_ok();
}

static __always_inline __u32 current_tgid(void)
{
    return bpf_get_current_pid_tgid() >> 32;
}

/* Reserve a ring buffer record of a constant size; a failure is a lost record. */
#define RB_RESERVE(type)                                                                       \
    ({                                                                                         \
        type *__r = bpf_ringbuf_reserve(&events, sizeof(type), 0);                             \
        if (!__r)                                                                              \
            stat_inc(MKB_STAT_LOST);                                                           \
        __r;                                                                                   \
    })

/* The library builds every record it hands to a probe in its caller's stack frame, so the
 * pointer argument lies a little above the stack pointer. A pointer elsewhere means the
 * registers the program sees are not the probed thread's: in the software-emulated (TCG) guests
 * of kernel 7.2, 2026-12-03, about one hit in 40,000 from two threads flat out saw the *other*
 * thread's first argument (its stack, 0x801000 away), beside its own stack pointer and tid.
 * Such a record is dropped and counted (MKB_STAT_BAD_REGS, reported with the lost records)
 * rather than attributed to the wrong thread. */
#define MKB_MAX_FRAME_BYTES (64 * 1024)
static __always_inline bool rec_on_stack(struct pt_regs *regs, const void *rec)
{
    if ((__u64)rec - PT_REGS_SP(regs) < MKB_MAX_FRAME_BYTES)
        return true;
    stat_inc(MKB_STAT_BAD_REGS);
    return false;
}

static __always_inline void fill_hdr(struct mkb_hdr *h, __u32 type, __u32 tgid)
{
    h->type = type;
    h->tgid = tgid;
    h->ts_ns = bpf_ktime_get_ns();
}

/* Add 1 to a per-CPU u64 counter keyed by *key, creating it when missing. */
static __always_inline void pcpu_inc(void *map, const void *key)
{
    __u64 one = 1, *v = bpf_map_lookup_elem(map, key);

    if (v) {
        __sync_fetch_and_add(v, 1);
        return;
    }
    if (!bpf_map_update_elem(map, key, &one, BPF_NOEXIST))
        return;
    v = bpf_map_lookup_elem(map, key);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        stat_inc(MKB_STAT_MAP_FULL);
}

#ifdef MKB_PROCESS_PROGS
/* A traced process's new child process (not a new thread) is traced too (-- CMD mode). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(mkb_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 ptgid, ctgid;
    __u8 one = 1;

    if (!cfg_follow_forks)
        return 0;
    ptgid = BPF_CORE_READ(parent, tgid);
    ctgid = BPF_CORE_READ(child, tgid);
    if (ptgid == ctgid || !bpf_map_lookup_elem(&traced, &ptgid))
        return 0;
    if (bpf_map_update_elem(&traced, &ctgid, &one, BPF_ANY))
        stat_inc(MKB_STAT_MAP_FULL);
    return 0;
}

/* The last thread of a traced process ends: tell user space (woken up at once) and stop
 * tracing the tgid. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(mkb_exit, struct task_struct *p)
{
    struct mkb_exit_ev *e;
    __u32 tgid = BPF_CORE_READ(p, tgid);

    if (!bpf_map_lookup_elem(&traced, &tgid))
        return 0;
    if (BPF_CORE_READ(p, signal, live.counter) != 0)
        return 0;
    bpf_map_delete_elem(&traced, &tgid);
    e = RB_RESERVE(struct mkb_exit_ev);
    if (!e)
        return 0;
    fill_hdr(&e->hdr, MKB_EV_EXIT, tgid);
    e->code = BPF_CORE_READ(p, exit_code);
    e->pad = 0;
    bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
    return 0;
}
#endif

#endif /* MKB_COMMON_H */
