#!/bin/bash
# Build: gcc -O2 -o /tmp/att_pairs tests/c/attached_pairs.c -Ialloc/include -Ltarget/memkind-lib -lmemkind -ldl
# SEMOFF: 0x$(readelf -SW LIB | awk '$2==".memkind_probe"{print $4}')
# usage: att_run.sh LIBPATH SEMOFF
lib=$1; off=$2; d=$(mktemp -d); ln -s $lib $d/libmemkind.so.0
cnt() { LD_LIBRARY_PATH=$d nice -n 10 valgrind --tool=callgrind --callgrind-out-file=/dev/null ${ATT_PAIRS:-/tmp/att_pairs} "$@" 2>&1 | awk '/Collected/ {print $4}'; }
for kind in DEFAULT REGULAR; do for o in 0 $off; do
  a=$(cnt $o 0 $kind); b=$(cnt $o 100000 $kind)
  echo "$kind sem=$([ $o = 0 ] && echo off || echo on) $(echo "scale=1; ($b-$a)/100000" | bc)"
done; done
