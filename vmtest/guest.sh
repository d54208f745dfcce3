#!/bin/bash
# Runs inside a vmtest guest (the host root is the guest's root over 9p). Prepares what the cell
# promises, then runs every host-built `kernel_*` test executable with --test-threads=1.
# Usage: guest.sh CELL_ENV_FILE   (written by vmtest/run; defines CELL TOPOLOGY PROVIDES KROOT
# TESTS_FILE REPO_DIR HUGEPAGES_PER_NODE TEST_ARGS REPEAT RERUN_FAILED)
set -uo pipefail
# shellcheck disable=SC1090
source "$1"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export MEMKIND_RS_CELL=$CELL MEMKIND_RS_CELL_PROVIDES=$PROVIDES
unset MEMKIND_HBW_NODES MEMKIND_RS_PMEM_DIR
[[ $TOPOLOGY == numa1 ]] || export MEMKIND_HBW_NODES=1
kver=$(uname -r)
say() { echo "guest[$CELL]: $*"; }
say "kernel $kver, memory nodes $(cat /sys/devices/system/node/has_memory 2>/dev/null || echo none)"

# Guest-private scratch space (/run is a tmpfs in the guest; /tmp is the host's, shared).
TMPDIR=$(mktemp -d /run/memkind-rs-tmp.XXXXXX)
export TMPDIR

# BPF programs attach through tracefs at its modern path too.
mountpoint -q /sys/kernel/tracing 2>/dev/null || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

# Hugepages: reserve on every node.
for n in /sys/devices/system/node/node[0-9]*; do
    f=$n/hugepages/hugepages-2048kB/nr_hugepages
    [[ -w $f ]] || { say "no 2 MiB hugepage pool on $(basename "$n")"; continue; }
    echo "$HUGEPAGES_PER_NODE" >"$f"
    say "$(basename "$n"): $(cat "$f") x 2 MiB hugepages reserved"
done

# The guest kernel's modules live in the extracted package, not in the host's /lib/modules.
# No modprobe.d: the host's (e.g. ndctl's `install libnvdimm ...`) would call modprobe without -d.
mkdir -p "$TMPDIR/modprobe.d"
gmodprobe() { modprobe -C "$TMPDIR/modprobe.d" -d "$KROOT" "$@"; }

pmem_dir=
if [[ $TOPOLOGY == pmem ]]; then
    for m in nfit nd_pmem dax_pmem ext4; do
        gmodprobe "$m" || grep -qw "$m" "$KROOT/lib/modules/$kver/modules.builtin" 2>/dev/null \
            || say "modprobe $m failed"
    done
    for _ in $(seq 50); do [[ -e /sys/bus/nd/devices/namespace0.0 ]] && break; sleep 0.2; done
    if ndctl create-namespace -f -e namespace0.0 -m fsdax >"$TMPDIR/ndctl.json" 2>&1; then
        dev=/dev/$(sed -n 's/.*"blockdev":"\([^"]*\)".*/\1/p' "$TMPDIR/ndctl.json" | head -1)
        [[ $dev == /dev/ ]] && dev=/dev/pmem0
        for _ in $(seq 50); do [[ -b $dev ]] && break; sleep 0.2; done
        pmem_dir=$(mktemp -d /run/memkind-rs-pmem.XXXXXX)
        if mkfs.ext4 -q -F -b 4096 "$dev" && mount -o dax "$dev" "$pmem_dir"; then
            export MEMKIND_RS_PMEM_DIR=$pmem_dir
            say "$dev (fsdax) mounted -o dax at $pmem_dir"
        else
            say "mkfs/mount -o dax of $dev failed"
        fi
    else
        say "ndctl create-namespace failed: $(cat "$TMPDIR/ndctl.json")"
    fi
fi

env | grep -E '^MEMKIND' | sed "s/^/guest[$CELL]: env /"
cd "$REPO_DIR" || exit 1
fail=0
while read -r name exe; do
    [[ -n $name ]] || continue
    for run in $(seq "${REPEAT:-1}"); do
        say "=== $name (run $run)"
        t0=$SECONDS
        # shellcheck disable=SC2086 # TEST_ARGS: words for the test harness
        if "$exe" --test-threads=1 --nocapture ${TEST_ARGS:-}; then
            say "=== $name: ok ($((SECONDS - t0)) s)"
            continue
        fi
        # RERUN_FAILED: how many more runs a failed test executable gets (vmtest/run:
        # rerun_failed_for); it passes as FLAKY if one of them passes whole.
        passed=0
        for rerun in $(seq "${RERUN_FAILED:-0}"); do
            say "=== $name: failed, running it again ($rerun of ${RERUN_FAILED}; vmtest/run: rerun_failed_for)"
            # shellcheck disable=SC2086
            if "$exe" --test-threads=1 --nocapture ${TEST_ARGS:-}; then
                passed=1
                break
            fi
        done
        if [[ $passed == 1 ]]; then
            say "=== $name: FLAKY: failed, then passed on rerun $rerun ($((SECONDS - t0)) s)"
        else
            say "=== $name: FAILED ($((SECONDS - t0)) s)"
            fail=1
        fi
    done
done <"$TESTS_FILE"

if [[ -n $pmem_dir ]]; then
    umount "$pmem_dir" 2>/dev/null
    rmdir "$pmem_dir"
fi
rm -rf "$TMPDIR"
if [[ $fail -eq 0 ]]; then say "RESULT PASS"; else say "RESULT FAIL"; fi
exit $fail
