#!/usr/bin/env bash
# Installs what the real-guest tests (tests/qemu_guest.rs, tests/qemu_storage.rs) need on
# Debian 12, idempotently:
#   * QEMU from bookworm-backports (the machine's qemu-utils is the backports 10.0 one; the
#     bookworm qemu-system-x86 would remove it), libvirt's QEMU driver, the libvirt-qemu user;
#   * a tiny test guest in target/test-guest/ (vmlinuz + initrd.gz) built from Debian's cloud
#     kernel and busybox-static, with scripts/test-guest/init as its PID 1 and the kernel modules
#     it needs to read its disks (virtio-blk root disk, IDE CD-ROM context ISO);
#   * the test Marketplace image of tests/qemu_storage.rs: root.img, a raw disk holding an ext2
#     file system (e2fsprogs' mke2fs -d, no mount needed) with the marker file
#     /etc/stratusd-image-marker, whose text is also in root.marker;
#   * the two-node site's (tests/real_site.rs, scripts/demo-site.sh): libvirtd and sshd for the nodes, and
#     site.img, a disk that boots by itself (syslinux on a FAT partition holding the same kernel
#     and initrd) as a StratusLab Marketplace image does; the guest takes its address by DHCP
#     and runs dropbear (from this machine's dropbear-bin, with the libraries it links, and
#     OpenSSH's sftp-server for scp).
# See shared/notes/libvirt-qemu-on-debian12.md for why each step is there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Refuses an installation that would remove packages (qemu-utils above all).
install_without_removals() {
  local plan removals
  plan=$(apt-get install -s --no-install-recommends "$@")
  removals=$(printf '%s\n' "$plan" | awk '/^Remv /{print $2}')
  if [ -n "$removals" ]; then
    echo "setup-qemu: refusing 'apt-get install $*': it would remove $(echo $removals)" >&2
    exit 1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

# --- the bookworm-backports suite, from this machine's own Debian mirror --------------------
if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # The URIs and key of the deb822 stanza that carries the plain `bookworm` suite.
  read -r mirror keyring < <(awk '
    /^[[:space:]]*$/ { if (main && uri != "") { print uri, key; found = 1; exit } main = 0; uri = ""; key = "" }
    /^URIs:/      { uri = $2 }
    /^Signed-By:/ { key = $2 }
    /^Suites:/    { for (i = 2; i <= NF; i++) if ($i == "bookworm") main = 1 }
    END           { if (!found && main && uri != "") print uri, key }
  ' /etc/apt/sources.list.d/debian.sources) || true
  if [ -z "${mirror:-}" ]; then
    echo "setup-qemu: no bookworm stanza in /etc/apt/sources.list.d/debian.sources" >&2
    exit 1
  fi
  echo "setup-qemu: adding bookworm-backports from $mirror"
  {
    echo "Types: deb"
    echo "URIs: $mirror"
    echo "Suites: bookworm-backports"
    echo "Components: main"
    if [ -n "${keyring:-}" ]; then echo "Signed-By: $keyring"; fi
  } | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  $SUDO apt-get update -qq
fi

# --- QEMU and libvirt's QEMU driver -----------------------------------------------------------
if ! installed qemu-system-x86; then
  # The suite may be configured without its package lists ever fetched.
  if [[ "$(apt-cache policy qemu-system-x86)" != *bookworm-backports* ]]; then
    $SUDO apt-get update -qq
  fi
  echo "setup-qemu: installing qemu-system-x86 from bookworm-backports"
  install_without_removals -t bookworm-backports qemu-system-x86
fi
# From bookworm, matching the machine's libvirt0 (no -t: backports must not bring another libvirt).
if ! installed libvirt-daemon-driver-qemu; then
  echo "setup-qemu: installing libvirt-daemon-driver-qemu"
  install_without_removals libvirt-daemon-driver-qemu
fi
# The nodes of the two-node site run their own libvirtd (the bookworm one, like the driver).
if ! installed libvirt-daemon; then
  echo "setup-qemu: installing libvirt-daemon"
  install_without_removals libvirt-daemon
fi
# ... and their own sshd (scripts/demo-site.sh starts /usr/sbin/sshd in each node's namespace
# with a configuration of its own; the machine's ssh service is not used).
if ! installed openssh-server; then
  echo "setup-qemu: installing openssh-server"
  install_without_removals openssh-server
fi
# StratusLab's Testor pings each new guest (ping -q -c 1 -w 5) before it logs in.
if ! installed iputils-ping; then
  echo "setup-qemu: installing iputils-ping"
  install_without_removals iputils-ping
fi
# What the site's guest is built from: dropbear for SSH, syslinux (with mtools and dosfstools,
# no mount needed) to make its disk bootable, sfdisk for its partition table.
for pkg in dropbear-bin syslinux syslinux-common mtools dosfstools fdisk; do
  if ! installed "$pkg"; then
    echo "setup-qemu: installing $pkg"
    install_without_removals "$pkg"
  fi
done
# libvirt's QEMU driver looks this user up even when it runs QEMU as root; without it every call
# re-probes QEMU (tens of seconds).
if ! getent passwd libvirt-qemu >/dev/null; then
  echo "setup-qemu: adding the libvirt-qemu system user"
  $SUDO useradd --system --no-create-home --user-group libvirt-qemu
fi

# tests/qemu_storage.rs puts its VMs' NIC on a bridge it creates with `ip`.
if ! command -v ip >/dev/null; then
  echo "setup-qemu: installing iproute2"
  install_without_removals iproute2
fi

# --- the test guest ---------------------------------------------------------------------------
guest_dir=target/test-guest
# Rebuilt when the guest's scripts or this recipe change (scripts/test-guest/recipe.sh) (any cloud kernel boots it, so a newer
# kernel in the archive is no reason to rebuild).
recipe=$(sh scripts/test-guest/recipe.sh)
if [ -s "$guest_dir/vmlinuz" ] && [ -s "$guest_dir/initrd.gz" ] && [ -s "$guest_dir/root.img" ] &&
  [ -s "$guest_dir/root.marker" ] && [ -s "$guest_dir/site.img" ] &&
  [ "$(cat "$guest_dir/recipe" 2>/dev/null)" = "$recipe" ]; then
  exit 0
fi
if [ ! -x /usr/lib/openssh/sftp-server ]; then
  echo "setup-qemu: installing openssh-sftp-server"
  install_without_removals openssh-sftp-server
fi
# mke2fs -d (e2fsprogs, required priority, normally there) builds the image without mounting.
if ! command -v mke2fs >/dev/null; then
  echo "setup-qemu: installing e2fsprogs"
  install_without_removals e2fsprogs
fi
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
if [ -z "$kernel_pkg" ]; then
  echo "setup-qemu: cannot tell which kernel linux-image-cloud-amd64 depends on" >&2
  exit 1
fi
echo "setup-qemu: building the test guest ($kernel_pkg, busybox-static) in $guest_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq "$kernel_pkg" busybox-static 2>&1 |
  grep -v 'Download is performed unsandboxed' || true)
for deb in "$work/$kernel_pkg"_*.deb "$work"/busybox-static_*.deb; do
  [ -s "$deb" ] || { echo "setup-qemu: download of $deb failed" >&2; exit 1; }
done
dpkg-deb -x "$work/$kernel_pkg"_*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
busybox="$work/busybox/bin/busybox"
modules=$(echo "$work"/kernel/lib/modules/*/kernel)

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules,etc/acpi/PWRF}
cp "$busybox" "$root/bin/busybox"
cp "$modules/drivers/input/evdev.ko" "$modules/drivers/acpi/button.ko" "$root/lib/modules/"
# The disk drivers, in load order (each after what it depends on; the cloud kernel has ext4,
# which mounts ext2, built in): virtio-blk for the root disk, the PIIX IDE controller and the
# SCSI CD-ROM driver for the context ISO (target hdd), and ISO 9660.
storage_modules="virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev
  virtio/virtio_pci_legacy_dev virtio/virtio_pci block/virtio_blk scsi/scsi_common scsi/scsi_mod
  ata/libata ata/ata_piix cdrom/cdrom scsi/sr_mod"
mkdir -p "$root/lib/modules/disks"
: >"$root/lib/modules/disks/order"
for module in $storage_modules; do
  cp "$modules/drivers/$module.ko" "$root/lib/modules/disks/"
  echo "${module#*/}" >>"$root/lib/modules/disks/order"
done
cp "$modules/fs/isofs/isofs.ko" "$root/lib/modules/disks/"
echo isofs >>"$root/lib/modules/disks/order"
# The network (virtio-net, which needs the failover modules) and FAT (the site image's
# partition; the cloud kernel's default character set is ascii), also in load order.
# The entropy of a virtio RNG (the site's guest_rng) lets dropbear answer at once.
for module in net/core/failover drivers/net/net_failover drivers/net/virtio_net fs/fat/fat \
  fs/fat/vfat fs/nls/nls_cp437 fs/nls/nls_ascii fs/nls/nls_utf8 drivers/char/hw_random/virtio-rng; do
  cp "$modules/$module.ko" "$root/lib/modules/disks/"
  echo "${module##*/}" >>"$root/lib/modules/disks/order"
done
install -m 0755 scripts/test-guest/init "$root/init"
install -m 0755 scripts/test-guest/power-button "$root/etc/acpi/PWRF/00000080"
install -m 0755 scripts/test-guest/udhcpc.script "$root/etc/udhcpc.script"
# dropbear and the libraries it links, at the same paths.
mkdir -p "$root/usr/sbin" "$root/root" "$root/lib64"
install -m 0755 /usr/sbin/dropbear "$root/usr/sbin/dropbear"
for lib in $(ldd /usr/sbin/dropbear | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/lib/ { print $1 }'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# OpenSSH's scp (9.x) speaks SFTP: dropbear runs /usr/lib/sftp-server for it (stratus-create-image
# uploads the user's scripts with scp). It links libc only, copied above.
install -D -m 0755 /usr/lib/openssh/sftp-server "$root/usr/lib/sftp-server"
# What Testor's persistent-disk tests run in the guest: `bash <script>` and /sbin/mkfs.ext3 (as
# on ttylinux), here busybox's sh and mke2fs (an ext2 file system: busybox writes no journal;
# the tests only format, mount, write and read it).
printf '#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n' >"$root/bin/bash"
mkdir -p "$root/sbin"
printf '#!/bin/busybox sh\nexec /bin/busybox mke2fs "$@"\n' >"$root/sbin/mkfs.ext3"
chmod 0755 "$root/bin/bash" "$root/sbin/mkfs.ext3"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '/bin/sh\n' >"$root/etc/shells"

mkdir -p "$guest_dir"
cp "$work"/kernel/boot/vmlinuz-* "$guest_dir/vmlinuz.new"
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -9) >"$guest_dir/initrd.gz.new"

# The Marketplace image: a raw disk that is one ext2 file system (no partition table).
image="$work/image"
mkdir -p "$image/etc"
marker="STRATUSD-MARKETPLACE-IMAGE-$(echo "$recipe" | cut -c1-12)"
echo "$marker" >"$image/etc/stratusd-image-marker"
echo "The root disk of tests/qemu_storage.rs, built by scripts/setup-qemu.sh." >"$image/README"
rm -f "$guest_dir/root.img.new"
truncate -s 8M "$guest_dir/root.img.new"
mke2fs -q -F -t ext2 -L stratusd-root -d "$image" "$guest_dir/root.img.new"
# The site's Marketplace image: an MBR disk whose one FAT partition (at 1 MiB) holds syslinux,
# the kernel and the initrd; `stratusd.tick` makes the guest count on its console.
site="$guest_dir/site.img.new"
offset=$((2048 * 512))
rm -f "$site"
truncate -s 24M "$site"
printf 'start=2048, type=6, bootable\n' | sfdisk -q "$site"
mkfs.vfat -n STRATUSD --offset 2048 "$site" $(((24 - 1) * 1024)) >/dev/null
syslinux --offset "$offset" --install "$site"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$site" bs=440 count=1 conv=notrunc status=none
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.gz console=ttyS0 quiet stratusd.tick\n' \
  >"$work/syslinux.cfg"
MTOOLS_SKIP_CHECK=1 mcopy -i "$site@@$offset" "$work"/kernel/boot/vmlinuz-* ::vmlinuz
MTOOLS_SKIP_CHECK=1 mcopy -i "$site@@$offset" "$guest_dir/initrd.gz.new" ::initrd.gz
MTOOLS_SKIP_CHECK=1 mcopy -i "$site@@$offset" "$work/syslinux.cfg" ::syslinux.cfg
mv "$site" "$guest_dir/site.img"
mv "$guest_dir/vmlinuz.new" "$guest_dir/vmlinuz"
mv "$guest_dir/root.img.new" "$guest_dir/root.img"
echo "$marker" >"$guest_dir/root.marker"
mv "$guest_dir/initrd.gz.new" "$guest_dir/initrd.gz"
echo "$kernel_pkg" >"$guest_dir/kernel-package"
echo "$recipe" >"$guest_dir/recipe"
echo "setup-qemu: test guest ready: $guest_dir/vmlinuz, $guest_dir/initrd.gz, $guest_dir/root.img, $guest_dir/site.img"
