#!/usr/bin/env bash
# The main job: set up, build memkind-rs, and run the demo (a C program built against Debian's
# memkind 1.14 headers, run against our libmemkind.so.0) that prints where each kind's memory
# landed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup.sh"
source "$here/lib.sh"
build_library
cc -O2 -Wall -o "$CARGO_TARGET_DIR/memkind-demo" "$here/demo/demo.c" -lmemkind
reserve_hugepages 16
LD_LIBRARY_PATH="$MEMKIND_RS_LIBDIR" "$CARGO_TARGET_DIR/memkind-demo"
