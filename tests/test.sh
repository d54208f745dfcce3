#!/usr/bin/env bash
# Every test: set up, build, unit and doc tests of every crate, the end-to-end tests (C programs
# against our libmemkind.so.0 and against Debian's memkind 1.14), lints, and the vmtest
# kernel x topology matrix.
#   tests/test.sh                        everything
#   tests/test.sh --no-vm                everything but the VM matrix
#   MEMKIND_RS_DIFF_SELFTEST=1 ...       differential suite against memkind 1.14 alone
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vm=1
[[ "${1:-}" == "--no-vm" ]] && vm=0
"$here/setup.sh"
source "$here/lib.sh"
cd "$repo"
build_library
# The initial-exec TLS variant (README: build variants), checked by tests/tests/abi.rs.
cargo build --release -p memkind --no-default-features --target-dir "$CARGO_TARGET_DIR/ie"
# memkind-probe: kernel_probe_stat and the VM cells run the built binary.
cargo build --release -p memkind-probe
cargo fmt --all -- --check
# alloc/src's modules import only downward, in the order written in alloc/src/lib.rs.
"$here/check-layers.sh"
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace -- --test-threads=2
# Bounded coverage-guided fuzzing of the C ABI (tests/fuzz/README.md): 60 s over the committed
# corpus plus the build (nightly; skipped with a reason without it).
"$here/fuzz/run.sh"
if ((vm)); then
  if [[ -x "$repo/vmtest/run" ]]; then
    "$repo/vmtest/run"
  else
    echo "vmtest/run missing" >&2
    exit 1
  fi
fi
