#!/usr/bin/env bash
# Installs what memkind-rs needs on a fresh Debian 12 (run as root); idempotent and quick when
# everything is already there. Rust itself (cargo) must already be installed (rustup).
set -euo pipefail

packages=(
  gcc make pkg-config           # C test programs, the demo, jemalloc's build
  clang libelf-dev zlib1g-dev   # BPF programs and the vendored libbpf
  clang-19                      # jemalloc's build (.cargo/config.toml: one TLS-descriptor call per malloc, gcc 12 makes two)
  libmemkind-dev libmemkind0    # memkind 1.14: the ABI we match, the oracle and the baseline
  libmemkind-progs              # its utilities (memkind-hbw-nodes, memtier), run on ours too
  libjemalloc2                  # jemalloc's own malloc/free, the baseline of probe-bench and memkind-bench
  valgrind                      # memkind-bench --instructions (callgrind; tests/tests/bench_instructions.rs)
  tmux                          # memkind-probe top driven headless (probe-cli/tests/top_tmux.rs)
  prometheus                    # scrapes memkind-probe serve (probe-cli/tests/prometheus.rs)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [[ -x "$d/cargo" ]] && export PATH="$d:$PATH"
  done
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
