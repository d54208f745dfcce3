#!/usr/bin/env bash
# End-to-end tests of memkind-rs. Builds our libmemkind.so first (the differential suite loads it
# through LD_LIBRARY_PATH and fails when it is missing), then runs the tests package.
#   tests/test.sh                       everything
#   tests/test.sh --test differential   only the differential suite
# MEMKIND_RS_DIFF_SELFTEST=1 checks the differential suite against memkind 1.14 alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p memkind
cargo test -p memkind-tests "$@" -- --test-threads=2
