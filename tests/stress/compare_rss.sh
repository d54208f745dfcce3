#!/usr/bin/env bash
# VmRSS over time of the same churn (churn_rss.c) against memkind 1.14 (Debian's libmemkind.so.0)
# and against ours (target/memkind-lib). Not part of CI: a measurement.
#   tests/stress/compare_rss.sh [seconds]     (default 60)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
secs="${1:-60}"
build_library
work="$(mktemp -d /tmp/memkind-churn.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -o "$work/churn" "$here/churn_rss.c" -lmemkind -lpthread
for lib in 1.14 ours; do
  mkdir -p "$work/pmem-$lib"
  if [[ $lib == ours ]]; then
    LD_LIBRARY_PATH="$MEMKIND_RS_LIBDIR" "$work/churn" "$secs" "$work/pmem-$lib" >"$work/$lib.txt"
  else
    "$work/churn" "$secs" "$work/pmem-$lib" >"$work/$lib.txt"
  fi
  awk -v lib="$lib" '$1 == "ops" { ops = $2; next }
    { n++; r[n] = $2; if ($2 > max) max = $2 }
    END { h = int(n / 2); for (i = 1; i <= h; i++) if (r[i] > m1) m1 = r[i];
          for (i = h + 1; i <= n; i++) if (r[i] > m2) m2 = r[i];
          printf "%-5s ops %d  VmRSS KiB: first %d  peak 1st half %d  peak 2nd half %d  last %d\n",
                 lib, ops, r[1], m1, m2, r[n] }' "$work/$lib.txt"
done
