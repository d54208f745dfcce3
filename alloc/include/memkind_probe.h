/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * memkind_probe.h: the records libmemkind (memkind-rs) hands to the memkind-probe BPF programs.
 *
 * This header is the one definition of every record shared by the library and the BPF programs
 * (the BPF programs in bpf/src/bpf/ include it; alloc/src and bpf/src mirror it with #[repr(C)] structs whose
 * layout tests/tests/abi.rs checks against this file). It uses only C's own integer types so that
 * it compiles unchanged for the host and for the BPF target.
 *
 * How the library talks to the probe:
 *  - The semaphore: a USDT-style u16, the last two bytes of section ".memkind_probe" (a local
 *    symbol, not exported: the hot path compares it with one RIP-relative instruction). The
 *    probe attaches its uprobes with ref_ctr_offset = the file offset of those two bytes (kernel
 *    >= 4.20), so the kernel increments it in every process mapping the library while a probe is
 *    attached. While it is 0 the library keeps no counters and calls none of the functions
 *    below: the hot path pays one compare and a predictable branch per call. The six bytes
 *    before it (the section is one aligned 8-byte word) hold the address of MEMKIND_DEFAULT's
 *    kind once the library has started, so DEFAULT's malloc and free compare their kind
 *    argument with the whole word: equal means DEFAULT and no probe attached.
 *  - While it is non-zero, each thread counts its calls per kind (struct mkp_counters, in its
 *    own per-kind record) and hands the deltas over through memkind_arena_stats_flush() every
 *    MKP_FLUSH_EVERY counted events, at thread exit, at kind destroy and at process exit.
 *  - Rare events are announced as they happen: extents (memkind_arena_extent_event, called from
 *    the extent hooks, never allocating) and kinds (memkind_arena_kind_event).
 *  - The trace semaphore: a second u16, alone in section ".memkind_probe_trace", the
 *    ref_ctr_offset of the trace tier's per-call uprobes (on the memkind_arena_* entry points,
 *    at offset 5 like the functions below). While it is non-zero (and the first one is too),
 *    MEMKIND_DEFAULT's malloc, calloc and free go through those entry points instead of
 *    jemalloc's fast path, so a trace sees them.
 *    With the trace semaphore set (and the first one), the traced entry points (malloc, calloc,
 *    pmem_calloc, posix_memalign, realloc, realloc_with_kind_detect, free,
 *    free_with_kind_detect) time the call themselves (CLOCK_MONOTONIC, read through the vDSO's
 *    clock_gettime: the clock of bpf_ktime_get_ns) and hand one struct mkp_trace per call to
 *    memkind_arena_trace_event(): one uprobe hit per call, no uretprobe.
 *  - memkind_probe_request: a probe that attaches to a running process writes a new value here
 *    (process_vm_writev) before it attaches. The first thread that counts after that drops the
 *    deltas left from an earlier session and re-announces every kind (MKP_KIND_ANNOUNCE) and
 *    every extent that exists (MKP_EXTENT_ANNOUNCE), so counting starts at the attach.
 *
 * The four functions are a 5-byte NOP (0f 1f 44 00 00), as every memkind_arena_* entry point
 * of ours starts, then a jump to the next instruction (eb 00) and a return. Probes attach at
 * offset 5, on the jump, which the kernel emulates without single-stepping; not on the NOP:
 * kernel 6.18 rewrites a probed nop5 into a call to a per-process trampoline that fork() does
 * not copy, so a child forked after the first hit would crash. The probe reads the record
 * through the pointer argument (first argument register).
 */
#ifndef MEMKIND_PROBE_H
#define MEMKIND_PROBE_H

#define MKP_VERSION 1

/* Counted events of one thread and kind between two flushes (at most). */
#define MKP_FLUSH_EVERY 1024

/*
 * Allocations by requested size: bucket 0 holds n <= 16, bucket i (1..14) holds
 * 2^(i+3) < n <= 2^(i+4), bucket 15 everything above 256 KiB.
 */
#define MKP_SIZE_BUCKETS 16

#define MKP_NAME_LEN 64
#define MKP_DIR_LEN 192
/* Node masks of up to 256 NUMA nodes. */
#define MKP_NODEMASK_WORDS 4

/* "No such thing" for kind and arena fields. */
#define MKP_NONE 0xffffffffu

/* One thread's counts for one kind (and the arena the thread uses for it). */
struct mkp_counters {
    unsigned long long allocs;          /* successful malloc, calloc, posix_memalign, realloc(NULL, n) */
    unsigned long long frees;           /* free of a non-NULL pointer, realloc(p, 0) */
    unsigned long long reallocs;        /* successful realloc of a live block to n > 0 */
    unsigned long long bytes_requested; /* sizes asked for by allocs and reallocs */
    unsigned long long bytes_allocated; /* usable size of the blocks handed out (allocs and reallocs) */
    unsigned long long bytes_freed;     /* usable size of the blocks given back (frees and reallocs) */
    unsigned long long size_buckets[MKP_SIZE_BUCKETS]; /* allocs and reallocs by requested size */
};

enum mkp_flush_reason {
    MKP_FLUSH_EVENTS = 1,       /* MKP_FLUSH_EVERY events counted */
    MKP_FLUSH_THREAD_EXIT = 2,  /* the thread ends */
    MKP_FLUSH_KIND_DESTROY = 3, /* the kind is destroyed */
    MKP_FLUSH_PROCESS_EXIT = 4, /* exit(): every thread's counts, flushed by the exiting thread */
};

/* Argument of memkind_arena_stats_flush(). */
struct mkp_flush {
    unsigned int version;  /* MKP_VERSION */
    unsigned int reason;   /* enum mkp_flush_reason */
    unsigned int kind;     /* kind id (a static kind's id is its memkind partition) */
    unsigned int arena;    /* jemalloc arena index the thread uses for the kind, or MKP_NONE */
    unsigned int tid;      /* the thread whose counts these are */
    unsigned int pad;
    struct mkp_counters delta;
};

enum mkp_extent_op {
    MKP_EXTENT_ALLOC = 1,    /* our hook mapped [addr, addr+size) for the kind */
    MKP_EXTENT_DESTROY = 2,  /* jemalloc gave [addr, addr+size) back for good */
    MKP_EXTENT_PURGE = 3,    /* [addr, addr+size) purged (pages given back, mapping kept) */
    MKP_EXTENT_SPLIT = 4,    /* [addr, addr+size) split at addr2 (second part size2 bytes) */
    MKP_EXTENT_MERGE = 5,    /* [addr, addr+size) and [addr2, addr2+size2) merged */
    MKP_EXTENT_UNMAP = 6,    /* the mapping [addr, addr+size) is gone */
    MKP_EXTENT_ANNOUNCE = 7, /* [addr, addr+size) exists (re-announced after a probe request) */
};

enum mkp_backing {
    MKP_BACKING_ANON = 0,    /* anonymous memory, optionally mbind()ed */
    MKP_BACKING_HUGETLB = 1, /* MAP_HUGETLB */
    MKP_BACKING_FILE = 2,    /* a PMEM kind's file */
    MKP_BACKING_FIXED = 3,   /* a fixed kind's caller buffer */
};

/* Argument of memkind_arena_extent_event(). Mapped ranges are whole 2 MiB granules (or the
 * backing's page size when larger): a granule belongs to one kind. */
struct mkp_extent {
    unsigned int version;     /* MKP_VERSION */
    unsigned int op;          /* enum mkp_extent_op */
    unsigned long long addr;
    unsigned long long size;
    unsigned long long addr2; /* SPLIT / MERGE: the second part */
    unsigned long long size2;
    unsigned int kind;        /* kind id */
    unsigned int arena;       /* jemalloc arena index, or MKP_NONE */
    int mbind_mode;           /* MPOL_* the kind asked for, -1 when it asks for none */
    unsigned int backing;     /* enum mkp_backing */
    unsigned long long page_size;
    unsigned long long nodemask[MKP_NODEMASK_WORDS]; /* nodes asked for (mbind_mode >= 0) */
};

enum mkp_kind_op {
    MKP_KIND_CREATE = 1,
    MKP_KIND_DESTROY = 2,
    MKP_KIND_ANNOUNCE = 3, /* exists (a static kind, or re-announced after a probe request) */
};

/* Argument of memkind_arena_kind_event(). */
struct mkp_kind {
    unsigned int version;    /* MKP_VERSION */
    unsigned int op;         /* enum mkp_kind_op */
    unsigned int kind;       /* kind id */
    unsigned int backing;    /* enum mkp_backing */
    int mbind_mode;          /* MPOL_* the kind asks for, -1 when none */
    unsigned int pad;
    unsigned long long nodemask[MKP_NODEMASK_WORDS];
    char name[MKP_NAME_LEN]; /* "MEMKIND_DEFAULT", ..., "PMEM:<dir>" (truncated), "FIXED:0x<addr>",
                                NUL-terminated */
    char dir[MKP_DIR_LEN];   /* PMEM directory (truncated, NUL-terminated), else empty */
};

/* Traced calls (struct mkp_trace.call); bpf/src/bpf/events.h's enum mkb_call_id has the same
 * ids. */
enum mkp_call {
    MKP_CALL_MALLOC = 1,          /* (kind, size) */
    MKP_CALL_CALLOC = 2,          /* (kind, num, size) */
    MKP_CALL_PMEM_CALLOC = 3,     /* (kind, num, size) */
    MKP_CALL_POSIX_MEMALIGN = 4,  /* (kind, memptr, align, size) */
    MKP_CALL_REALLOC = 5,         /* (kind, ptr, size) */
    MKP_CALL_REALLOC_DETECT = 6,  /* (ptr, size) */
    MKP_CALL_FREE = 7,            /* (kind, ptr) */
    MKP_CALL_FREE_DETECT = 8,     /* (ptr) */
};

/* Argument of memkind_arena_trace_event(): one call of a traced memkind_arena_* entry point,
 * measured by the library (written on the caller's stack after the call returned). */
struct mkp_trace {
    unsigned int version;        /* MKP_VERSION */
    unsigned int call;           /* enum mkp_call */
    unsigned int kind;           /* the named kind's id, MKP_NONE for none (the *_detect calls, a
                                    pointer that is no kind) */
    unsigned int arena;          /* arena index, MKP_NONE when not known (so far: always) */
    unsigned long long kind_ptr; /* the kind pointer argument (0 for the *_detect calls) */
    unsigned long long size;     /* size argument (calloc: the element size) */
    unsigned long long num;      /* calloc's element count */
    unsigned long long align;    /* posix_memalign's alignment */
    unsigned long long ptr;      /* the pointer argument (realloc, free) */
    unsigned long long result;   /* the pointer handed out (posix_memalign: *memptr on success) */
    int ret;                     /* posix_memalign's return value, else 0 */
    int err;                     /* errno after a call that handed out NULL for size > 0, else 0 */
    unsigned long long start_ns; /* CLOCK_MONOTONIC at entry */
    unsigned long long latency_ns; /* entry to return */
    unsigned int tid;            /* the calling thread (gettid) for the probe's consistency check;
                                    0 in a process outside the initial PID namespace (not checked) */
    unsigned int pad;
};

#ifndef __bpf__
extern volatile unsigned long long memkind_probe_request;
void memkind_arena_stats_flush(const struct mkp_flush *rec);
void memkind_arena_extent_event(const struct mkp_extent *ev);
void memkind_arena_kind_event(const struct mkp_kind *ev);
void memkind_arena_trace_event(const struct mkp_trace *ev);
#endif

#endif /* MEMKIND_PROBE_H */
