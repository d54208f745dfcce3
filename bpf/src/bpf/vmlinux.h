/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vmlinux.h: the few kernel types memkind-probe's BPF programs use, written by hand (nothing is
 * downloaded or dumped at build time). Structs carry preserve_access_index, so libbpf relocates
 * every field access against the running kernel's BTF (/sys/kernel/btf/vmlinux): only the field
 * names must match the kernel's, not the layout. x86-64 only (struct pt_regs).
 */
#ifndef MKB_VMLINUX_H
#define MKB_VMLINUX_H
/* bpf_tracing.h picks the kernel's pt_regs field names (di, si...) when it sees this. */
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

/* include/uapi/linux/bpf.h: only what the programs and bpf_helpers.h need. */
enum bpf_map_type {
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_ARRAY = 2,
    BPF_MAP_TYPE_PROG_ARRAY = 3,
    BPF_MAP_TYPE_PERCPU_HASH = 5,
    BPF_MAP_TYPE_PERCPU_ARRAY = 6,
    BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
    BPF_ANY = 0,
    BPF_NOEXIST = 1,
    BPF_EXIST = 2,
};

enum {
    BPF_F_NO_PREALLOC = 1,
};

enum {
    BPF_RB_NO_WAKEUP = 1,
    BPF_RB_FORCE_WAKEUP = 2,
};

/* arch/x86/include/asm/ptrace.h (x86-64): uprobe programs get one as their context. */
struct pt_regs {
    unsigned long r15;
    unsigned long r14;
    unsigned long r13;
    unsigned long r12;
    unsigned long bp;
    unsigned long bx;
    unsigned long r11;
    unsigned long r10;
    unsigned long r9;
    unsigned long r8;
    unsigned long ax;
    unsigned long cx;
    unsigned long dx;
    unsigned long si;
    unsigned long di;
    unsigned long orig_ax;
    unsigned long ip;
    unsigned long cs;
    unsigned long flags;
    unsigned long sp;
    unsigned long ss;
} __attribute__((preserve_access_index));

typedef struct {
    int counter;
} atomic_t;

struct signal_struct {
    atomic_t live;
} __attribute__((preserve_access_index));

struct task_struct {
    int pid;
    int tgid;
    int exit_code;
    struct signal_struct *signal;
} __attribute__((preserve_access_index));

#endif /* MKB_VMLINUX_H */
