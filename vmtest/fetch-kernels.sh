#!/bin/bash
# Download Debian's generic amd64 kernels for the matrix and prepare each for vmtest:
#   5.10 (bullseye-security), 6.1 and 6.12 (bookworm + bookworm-security/-updates), sid (newest).
# For each slot the newest package matching the slot's name pattern is taken, so a rolled-over
# ABI does not break the run. Packages are fetched with `apt-get download` through a private
# APT_CONFIG (the system's sources are untouched), unpacked with `dpkg -x`, indexed with depmod,
# and given a small busybox initramfs that loads the virtio/9p modules, mounts the 9p root and
# hands over to vmtest's init (see initrd-init.sh).
# Usage: fetch-kernels.sh [SLOT...]   (default: all). Prints "SLOT DIR" for each ready kernel;
# a kernel that cannot be had is a loud warning on stderr and exit status 2.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ALL_SLOTS=(5.10 6.1 6.12 sid)
slots=("$@")
[[ ${#slots[@]} -gt 0 ]] || slots=("${ALL_SLOTS[@]}")

KDIR=$CACHE_DIR/kernels
mkdir -p "$KDIR"

read -r main sec < <(debian_mirrors)
conf=$(private_apt "$CACHE_DIR/apt-kernels" <<SRC
deb $main bookworm main
deb $main bookworm-updates main
deb $sec bookworm-security main
deb $sec bullseye-security main
deb $main sid main
SRC
)
lists_ok=1
private_apt_update "$conf" 720 || { lists_ok=0; warn "apt-get update for the kernel suites failed; using cached kernels only"; }

# Image package name pattern per slot (generic flavour only: cloud kernels lack 9p).
pattern() {
    case $1 in
        5.10) echo '^linux-image-5\.10\.[0-9a-z.+-]*-amd64$' ;;
        6.1)  echo '^linux-image-6\.1\.[0-9a-z.+-]*-amd64$' ;;
        6.12) echo '^linux-image-6\.12\.[0-9a-z.+-]*-amd64$' ;;
        sid)  echo '^linux-image-[0-9][0-9a-z.+-]*-amd64$' ;;
        *) die "unknown kernel slot $1 (known: ${ALL_SLOTS[*]})" ;;
    esac
}

pick() {  # newest package name for slot $1
    APT_CONFIG=$conf apt-cache pkgnames linux-image- 2>/dev/null \
        | grep -E "$(pattern "$1")" | grep -Ev -- '-(cloud|rt)-amd64$|-dbg$|-unsigned$' \
        | sort -V | tail -1
}

# Modules the initramfs must load before it can mount the 9p root and vmtest can talk to the guest.
INITRD_MODS=(virtio_pci virtio_console 9pnet_virtio 9p)

make_initrd() {  # $1 = kernel dir, $2 = kernel release
    local kd=$1 kver=$2 work m line path n=0
    work=$(mktemp -d)
    mkdir -p "$work"/{bin,dev,proc,sys,newroot,mods}
    cp /bin/busybox "$work/bin/busybox"
    : >"$work/mods/order"
    declare -A seen=()
    for m in "${INITRD_MODS[@]}"; do
        while read -r line; do
            [[ $line == insmod* ]] || continue
            path=$(awk '{print $2}' <<<"$line")
            [[ -n ${seen[$path]:-} ]] && continue
            seen[$path]=1
            n=$((n + 1))
            local out
            out="$work/mods/$(printf '%02d' "$n")-$(basename "${path%%.ko*}").ko"
            case $path in
                *.ko.xz) xz -dc "$path" >"$out" ;;
                *.ko.zst) zstd -qdc "$path" >"$out" ;;
                *.ko.gz) gzip -dc "$path" >"$out" ;;
                *) cp "$path" "$out" ;;
            esac
            echo "$(basename "$out")" >>"$work/mods/order"
        done < <(modprobe -d "$kd/root" -S "$kver" --show-depends "$m" 2>/dev/null || true)
    done
    cp "$VMTEST_DIR/initrd-init.sh" "$work/init"
    chmod +x "$work/init"
    (cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) >"$kd/initrd.img.tmp"
    mv "$kd/initrd.img.tmp" "$kd/initrd.img"
    rm -rf "$work"
}

prepare() {  # $1 = slot
    local slot=$1 pkg ver kd deps d kver
    kd=$KDIR/$slot
    pkg=""
    [[ $lists_ok -eq 1 ]] && pkg=$(pick "$slot")
    if [[ -z $pkg ]]; then
        if [[ -f $kd/ready ]]; then
            warn "no package found for kernel $slot now; using the cached $(cat "$kd/ready")"
            echo "$slot $kd"
            return 0
        fi
        warn "KERNEL $slot CANNOT BE HAD: no package matches $(pattern "$slot") — its cells will FAIL"
        return 1
    fi
    ver=$(APT_CONFIG=$conf apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ {print $2; exit}')
    if [[ -f $kd/ready && $(cat "$kd/ready") == "$pkg $ver" ]]; then
        echo "$slot $kd"
        return 0
    fi
    log "kernel $slot: $pkg $ver"
    rm -rf "$kd"
    mkdir -p "$kd/debs" "$kd/root"
    # The image package, plus (on newer kernels, where it is split) the binary/modules/base parts.
    deps=$(APT_CONFIG=$conf apt-cache show --no-all-versions "$pkg" | awk -F': ' '/^Depends:/ {print $2; exit}' \
        | tr ',|' '\n\n' | awk '{print $1}' | grep -E '^linux-(binary|modules|base|image)-[0-9]' || true)
    (cd "$kd/debs" && APT_CONFIG=$conf apt-get -q download "$pkg" $deps >"$kd/download.log" 2>&1) \
        || { tail "$kd/download.log" >&2; warn "KERNEL $slot: download of $pkg failed — its cells will FAIL"; return 1; }
    for d in "$kd"/debs/*.deb; do dpkg -x "$d" "$kd/root"; done
    # Merged-/usr packages put modules under usr/lib; depmod -b wants lib/modules.
    if [[ ! -e $kd/root/lib && -d $kd/root/usr/lib ]]; then ln -s usr/lib "$kd/root/lib"; fi
    kver=$(ls "$kd/root/lib/modules" | head -1)
    [[ -n $kver ]] || { warn "KERNEL $slot: $pkg has no modules"; return 1; }
    # The image is in boot/ (<= 6.x packages) or next to the modules (split packages, 7.x).
    local img
    img=$(cd "$kd" && ls root/boot/vmlinuz-* "root/lib/modules/$kver/vmlinuz" 2>/dev/null | head -1)
    [[ -n $img ]] || { warn "KERNEL $slot: $pkg has no vmlinuz"; return 1; }
    ln -sf "$img" "$kd/vmlinuz"
    depmod -b "$kd/root" "$kver"
    echo "$kver" >"$kd/kver"
    make_initrd "$kd" "$kver"
    rm -rf "$kd/debs"
    echo "$pkg $ver" >"$kd/ready"
    echo "$slot $kd"
}

rc=0
for s in "${slots[@]}"; do
    prepare "$s" || rc=2
done
exit $rc
