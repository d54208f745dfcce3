#!/usr/bin/env bash
# The main job: set up, build memkind-rs, and run the demo (a C program built against Debian's
# memkind 1.14 headers, run against our libmemkind.so.0) that prints where each kind's memory
# landed, under `memkind-probe stat`, which then prints what each kind did (allocs, bytes, page
# faults, pages per node) as seen from outside through eBPF. Without root the demo runs alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup.sh"
source "$here/lib.sh"
build_library
cc -O2 -Wall -o "$CARGO_TARGET_DIR/memkind-demo" "$here/demo/demo.c" -lmemkind
reserve_hugepages 16
if [[ $(id -u) -eq 0 && -e /sys/kernel/btf/vmlinux ]]; then
  (cd "$repo" && cargo build --release -p memkind-probe)
  LD_LIBRARY_PATH="$MEMKIND_RS_LIBDIR" "$CARGO_TARGET_DIR/release/memkind-probe" stat -- \
    "$CARGO_TARGET_DIR/memkind-demo"
else
  echo "note: not root or no kernel BTF: the demo runs without memkind-probe"
  LD_LIBRARY_PATH="$MEMKIND_RS_LIBDIR" "$CARGO_TARGET_DIR/memkind-demo"
fi
