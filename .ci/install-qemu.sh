#!/bin/sh
# Installs what the vm executor's tests need, idempotently (the lead's .ci/run calls it as root):
#   - qemu-system-x86 (qemu-system-x86_64) and busybox-static, from Debian, when missing;
#   - Debian's cloud kernel, extracted (not installed into /boot) into a cache dir.
# Prints the kernel's path on the last line: "kernel: <path>" (its modules: "<cache>/modules"). The tests find it at the same place
# (SHOAL_VM_KERNEL overrides; SHOAL_VM_CACHE moves the cache dir).
set -eu

CACHE="${SHOAL_VM_CACHE:-/var/cache/shoal-test}"
KERNEL="$CACHE/vmlinuz"

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
# busybox-static: Debian's plain busybox is dynamic; the test initramfs needs the static one.
dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
if [ -n "$need" ]; then
  [ "$(id -u)" = 0 ] || { echo "install-qemu: need root to install:$need" >&2; exit 1; }
  echo "install-qemu: installing$need"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# The test guest's power button (QMP system_powerdown) needs button+evdev; its network (a tap on an
# overlay bridge, virtio-net on microvm's virtio-mmio) the virtio ones. The cloud kernel has them as
# modules; the guest's init loads every one it is given.
MODULES="drivers/input/evdev.ko drivers/acpi/button.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko
  drivers/virtio/virtio_mmio.ko net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko
  drivers/block/virtio_blk.ko"
have_modules() {
  for m in $MODULES; do [ -s "$CACHE/modules/$(basename "$m")" ] || return 1; done
}

if [ ! -s "$KERNEL" ] || ! have_modules; then
  mkdir -p "$CACHE"
  # The versioned package the meta-package points at, e.g. linux-image-6.1.0-56-cloud-amd64.
  pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1)"
  if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg="$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1)"
  fi
  [ -n "$pkg" ] || { echo "install-qemu: cannot resolve linux-image-cloud-amd64 to a versioned package" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # apt's sandbox user must be able to write where it downloads.
  chmod 0777 "$work"
  (cd "$work" && apt-get download -qq "$pkg")
  dpkg -x "$work"/*.deb "$work/root"
  src="$(ls "$work"/root/boot/vmlinuz-* | head -n1)"
  mkdir -p "$CACHE/modules"
  for m in $MODULES; do
    cp "$(ls -d "$work"/root/lib/modules/*/kernel)/$m" "$CACHE/modules/"
  done
  cp "$src" "$KERNEL.tmp"
  echo "$pkg" > "$CACHE/vmlinuz.package"
  mv "$KERNEL.tmp" "$KERNEL"
fi

echo "qemu: $(qemu-system-x86_64 --version | head -n1)"
echo "modules: $CACHE/modules"
echo "kernel: $KERNEL"
