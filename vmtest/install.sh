#!/bin/bash
# Install what the vmtest matrix needs on the host, when missing (idempotent; a no-op when all is
# there): QEMU 10 from bookworm-backports (matching the image's backports qemu-utils), the guest
# agent, busybox-static, kmod, ndctl, cpio, e2fsprogs, and vmtest from crates.io.
# The system's apt sources are not changed: bookworm-backports is reached through a private
# APT_CONFIG under vmtest/.cache/apt-host.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ $(id -u) -eq 0 ]] || die "the vmtest matrix needs root (it installs packages and runs QEMU)"

need_pkgs=()
qemu_ok=1
ver=$(dpkg-query -W -f='${Status} ${Version}' qemu-system-x86 2>/dev/null || true)
case $ver in
    "install ok installed 1:"1[0-9].*) ;;
    *) qemu_ok=0 ;;
esac
command -v qemu-ga >/dev/null || qemu_ok=0
for cmd in busybox:busybox-static modprobe:kmod ndctl:ndctl cpio:cpio mkfs.ext4:e2fsprogs xz:xz-utils zstd:zstd; do
    command -v "${cmd%%:*}" >/dev/null || need_pkgs+=("${cmd#*:}")
done
# busybox must be the static one (the initramfs has no libc).
if command -v busybox >/dev/null && ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    need_pkgs+=(busybox-static)
fi

if [[ $qemu_ok -eq 0 || ${#need_pkgs[@]} -gt 0 ]]; then
    read -r main sec < <(debian_mirrors)
    conf=$(private_apt "$CACHE_DIR/apt-host" <<SRC
deb $main bookworm main
deb $main bookworm-updates main
deb $sec bookworm-security main
deb $main bookworm-backports main
SRC
)
    private_apt_update "$conf" 60 || die "apt-get update failed (see $CACHE_DIR/apt-host/update.log)"
    export DEBIAN_FRONTEND=noninteractive
    if [[ $qemu_ok -eq 0 ]]; then
        log "installing QEMU from bookworm-backports"
        APT_CONFIG=$conf apt-get -q install -y --no-install-recommends -t bookworm-backports \
            qemu-system-x86 qemu-utils qemu-guest-agent >"$CACHE_DIR/apt-host/install.log" 2>&1 \
            || { tail -30 "$CACHE_DIR/apt-host/install.log" >&2; die "installing QEMU failed"; }
    fi
    if [[ ${#need_pkgs[@]} -gt 0 ]]; then
        log "installing ${need_pkgs[*]}"
        APT_CONFIG=$conf apt-get -q install -y --no-install-recommends "${need_pkgs[@]}" \
            >>"$CACHE_DIR/apt-host/install.log" 2>&1 \
            || { tail -30 "$CACHE_DIR/apt-host/install.log" >&2; die "installing ${need_pkgs[*]} failed"; }
    fi
fi

if ! command -v vmtest >/dev/null; then
    log "cargo install vmtest --locked (about 90 s)"
    command -v cargo >/dev/null || die "cargo is needed to install vmtest"
    cargo install vmtest --version 0.18.0 --locked >&2
fi
log "host tools ready: $(qemu-system-x86_64 --version | head -1), $(vmtest --version 2>&1 | head -1)"
