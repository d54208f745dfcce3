/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * trace.bpf.c: the exact per-call tier on memkind-rs's exported memkind_arena_* functions.
 * Slow by nature (a uprobe and a uretprobe per call). Loaded next to memkind.bpf.c, whose
 * "traced", "events" and "stats" maps it reuses: one filter, one ring buffer. User space maps
 * the kind pointers to kinds.
 */
#include "calls.h"

static __always_inline int call_exit(__u32 call, long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct mkb_pending c;
    struct mkb_args a;

    if (!call_return(id, call, &c))
        return 0;
    decode_args(&c, &a);
    emit_call(id, &c, &a, call_result(&c, &a, ret), ret, MKP_NONE);
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
