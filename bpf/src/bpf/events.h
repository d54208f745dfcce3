/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * events.h: what memkind-probe's BPF programs hand to user space (ring buffer records, map keys
 * and values, statistics slots). bpf/src/events.rs mirrors it with #[repr(C)] structs; the
 * layout test (bpf/tests/layout.rs) compiles this header for the host and compares. Only C's
 * own integer types, so it compiles for the host and for the BPF target alike.
 */
#ifndef MKB_EVENTS_H
#define MKB_EVENTS_H

#include "memkind_probe.h"

/* Record types (struct mkb_hdr.type). */
enum mkb_event_type {
    MKB_EV_FLUSH = 1,  /* struct mkb_flush_ev: a counter flush (record mode only) */
    MKB_EV_EXTENT = 2, /* struct mkb_extent_ev */
    MKB_EV_KIND = 3,   /* struct mkb_kind_ev (stock mode: synthesised on a kind's first call) */
    MKB_EV_CALL = 4,   /* struct mkb_call_ev: one call (trace tier) */
    MKB_EV_EXIT = 5,   /* struct mkb_exit_ev: the last thread of a traced process ended */
};

struct mkb_hdr {
    unsigned int type; /* enum mkb_event_type */
    unsigned int tgid;
    unsigned long long ts_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
};

struct mkb_flush_ev {
    struct mkb_hdr hdr;
    struct mkp_flush rec;
};

struct mkb_extent_ev {
    struct mkb_hdr hdr;
    struct mkp_extent rec;
};

struct mkb_kind_ev {
    struct mkb_hdr hdr;
    struct mkp_kind rec;
};

struct mkb_exit_ev {
    struct mkb_hdr hdr;
    int code; /* wait status as the kernel keeps it: (status << 8) | signal */
    unsigned int pad;
};

/* Probed calls, the same ids for our memkind_arena_* functions and memkind 1.14's memkind_*. */
enum mkb_call_id {
    MKB_CALL_MALLOC = 1,          /* (kind, size) */
    MKB_CALL_CALLOC = 2,          /* (kind, num, size) */
    MKB_CALL_PMEM_CALLOC = 3,     /* (kind, num, size) */
    MKB_CALL_POSIX_MEMALIGN = 4,  /* (kind, memptr, align, size) */
    MKB_CALL_REALLOC = 5,         /* (kind, ptr, size) */
    MKB_CALL_REALLOC_DETECT = 6,  /* (ptr, size) */
    MKB_CALL_FREE = 7,            /* (kind, ptr) */
    MKB_CALL_FREE_DETECT = 8,     /* (ptr) */
    MKB_CALL_N = 9,
};

/* The library's struct mkp_trace names calls by the same ids. */
_Static_assert(MKB_CALL_MALLOC == MKP_CALL_MALLOC && MKB_CALL_CALLOC == MKP_CALL_CALLOC &&
                   MKB_CALL_PMEM_CALLOC == MKP_CALL_PMEM_CALLOC &&
                   MKB_CALL_POSIX_MEMALIGN == MKP_CALL_POSIX_MEMALIGN &&
                   MKB_CALL_REALLOC == MKP_CALL_REALLOC &&
                   MKB_CALL_REALLOC_DETECT == MKP_CALL_REALLOC_DETECT &&
                   MKB_CALL_FREE == MKP_CALL_FREE && MKB_CALL_FREE_DETECT == MKP_CALL_FREE_DETECT,
               "enum mkb_call_id and enum mkp_call differ");

struct mkb_call_ev {
    struct mkb_hdr hdr;          /* ts_ns: entry */
    unsigned int tid;
    unsigned int call;           /* enum mkb_call_id */
    unsigned long long kind;     /* the kind pointer argument (0 for the *_detect calls) */
    unsigned long long size;
    unsigned long long num;      /* calloc */
    unsigned long long align;    /* posix_memalign */
    unsigned long long ptr;      /* the pointer argument (realloc, free) */
    unsigned long long result;   /* the pointer returned (posix_memalign: *memptr on success) */
    long long ret;               /* posix_memalign's return value, else 0 */
    unsigned long long latency_ns;
    unsigned int kind_id;        /* the kind's id (stock: its partition), MKP_NONE when unknown */
    unsigned int pad;
};

/* Map keys and values read by user space. */
struct mkb_key {
    unsigned int tgid;
    unsigned int kind;
    unsigned int arena;
};

struct mkb_granule_key {
    unsigned int tgid;
    unsigned int pad;
    unsigned long long granule; /* address >> MKB_GRANULE_SHIFT */
};

struct mkb_granule {
    unsigned int kind;
    unsigned int arena;
    unsigned int backing;
    int mbind_mode;
};

#define MKB_GRANULE_SHIFT 21
/* Granules one extent event may add or remove (4096: 8 GiB), in chunks of MKB_GRANULE_CHUNK per
 * program run (a tail call each, so the verifier walks a short loop); beyond that
 * MKB_STAT_GRANULE_OVERFLOW counts. */
#define MKB_GRANULE_CHUNK 128
#define MKB_MAX_GRANULES 4096

/* Slots of the per-CPU "stats" array. */
enum mkb_stat {
    MKB_STAT_LOST = 0,             /* bpf_ringbuf_reserve failed: a record is lost */
    MKB_STAT_GRANULE_OVERFLOW = 1, /* an extent spans more than MKB_MAX_GRANULES granules */
    MKB_STAT_MAP_FULL = 2,         /* a counter / granule / fault map update failed */
    MKB_STAT_READ_FAULT = 3,       /* a record could not be read from the traced process */
    MKB_STAT_LIVE_MISS = 4,        /* stock: a freed pointer was not in the live-block map */
    MKB_STAT_LIVE_FULL = 5,        /* stock: the live-block map is full */
    MKB_STAT_UNPAIRED = 6,         /* a return without its entry (attached mid-call) */
    MKB_STAT_BAD_REGS = 7,         /* a record pointer not in the probed thread's stack: dropped */
    MKB_STAT_N = 8,
};

#endif /* MKB_EVENTS_H */
