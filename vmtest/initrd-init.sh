#!/bin/busybox sh
# /init of the small initramfs given to Debian kernels under vmtest. Debian builds virtio_pci
# (5.10, 6.1), virtio_console and 9p as modules, and vmtest passes no initrd: load them, mount the
# host root shared over 9p (tag /dev/root) and hand over to vmtest's init (the kernel's init=).
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
for m in $(/bin/busybox cat /mods/order); do
    /bin/busybox insmod /mods/$m || echo "initrd: insmod $m failed"
done
init=/sbin/init
flags=trans=virtio,cache=mmap,msize=1048576
for arg in $(/bin/busybox cat /proc/cmdline); do
    case $arg in
        init=*) init=${arg#init=} ;;
        rootflags=*) flags=${arg#rootflags=} ;;
    esac
done
i=0
until /bin/busybox mount -t 9p -o "$flags" /dev/root /newroot; do
    i=$((i + 1))
    [ $i -ge 20 ] && { echo "initrd: cannot mount the 9p root"; /bin/busybox poweroff -f; }
    /bin/busybox sleep 0.5
done
/bin/busybox umount /sys /proc
/bin/busybox umount /dev 2>/dev/null
exec /bin/busybox switch_root /newroot "$init"
