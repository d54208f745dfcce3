#!/usr/bin/env bash
# Bounded fuzzing of the C ABI (tests/fuzz/README.md), for CI: build the cargo-fuzz target and
# run it for MEMKIND_RS_FUZZ_SECS seconds (default 60, at most 90 in CI) over the committed
# corpus. Fails on any crash, leak report or model violation; skips (exit 0, with the reason)
# when there is no nightly toolchain.
#   tests/fuzz/run.sh                   bounded run (CI)
#   MEMKIND_RS_FUZZ_SECS=1800 tests/fuzz/run.sh    a longer run
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
secs="${MEMKIND_RS_FUZZ_SECS:-60}"
target=c_abi

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "SKIP fuzz: no nightly toolchain (cargo-fuzz needs -Zsanitizer); rustup toolchain list:"
  rustup toolchain list 2>&1 | sed 's/^/  /' || true
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd "$repo"
cargo fmt --manifest-path tests/fuzz/Cargo.toml -- --check
start=$(date +%s)
cargo +nightly fuzz build --fuzz-dir tests/fuzz "$target"
built=$(date +%s)

# New inputs go to a scratch copy: the committed corpus only changes by hand (README.md).
work="$(mktemp -d /tmp/memkind-fuzz-run.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
log="$work/fuzz.log"
set +e
# TMPDIR: the target's PMEM directories (memkind-fuzz-<pid>) go to the scratch directory too.
TMPDIR="$work" cargo +nightly fuzz run --fuzz-dir tests/fuzz "$target" "$work/corpus" "$here/corpus/$target" -- \
  -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" 2>&1 | tee "$log" | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE|pulse)|stat::|==[0-9]+==ERROR|SUMMARY|thread .* panicked)' 
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "fuzz: build $((built - start)) s, run $((end - built)) s, exit $rc"
if ((rc != 0)); then
  echo "fuzz: FAILED; the last lines of the log and the reproducer:" >&2
  tail -60 "$log" >&2
  for f in "$work"/artifacts/*; do
    [[ -e $f ]] || continue
    keep="$repo/target/fuzz-artifacts"
    mkdir -p "$keep"
    cp "$f" "$keep/"
    echo "reproducer: $keep/$(basename "$f") (cargo +nightly fuzz run --fuzz-dir tests/fuzz $target $keep/$(basename "$f"))" >&2
  done
  exit 1
fi
