#!/bin/sh
# Run tests on a pure cgroup v2 kernel: boot Debian's kernel under qemu
# (software emulation, no KVM needed) with an initramfs made from this
# machine's busybox, python3 and pytest, and this working tree.
#
#   sudo sh tools/v2vm.sh                              tests/test_cgroups.py --impl final
#   sudo sh tools/v2vm.sh tests/test_run.py --impl final -x    any pytest arguments
#
# Needs: sudo apt-get install linux-image-amd64 qemu-system-x86 busybox-static python3-pytest
# Environment: KERNEL (default: the newest /boot/vmlinuz-*), MEM (MiB, 2048),
# CPUS (2), ACCEL (tcg; kvm where /dev/kvm works), TIMEOUT (seconds, 1800),
# SCRATCH (MiB, 4096: the ext4 disk the tests' files live on).
# Prints the guest's console; exits with pytest's status inside the guest.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
KERNEL=${KERNEL:-$(ls -v /boot/vmlinuz-* | tail -n 1)}
VERSION=${KERNEL#/boot/vmlinuz-}
MODULES=/lib/modules/$VERSION
PYTHON=/usr/bin/python3
PYVER=$($PYTHON -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
WORK=$(mktemp -d /tmp/dockyard-v2vm.XXXXXX)
ROOT=$WORK/root
trap 'rm -rf "$WORK"' EXIT
[ $# -gt 0 ] || set -- tests/test_cgroups.py --impl final

for need in qemu-system-x86_64 cpio gzip mkfs.ext4; do
    command -v $need >/dev/null || { echo "error: $need not found"; echo "hint: sudo apt-get install qemu-system-x86 cpio gzip e2fsprogs"; exit 125; }
done
[ -r "$KERNEL" ] || { echo "error: no kernel at $KERNEL"; echo "hint: sudo apt-get install linux-image-amd64"; exit 125; }
$PYTHON -c 'import pytest' 2>/dev/null || { echo "error: $PYTHON has no pytest"; echo "hint: sudo apt-get install python3-pytest"; exit 125; }

# --- the guest's root: busybox, python with its libraries, pytest, the working tree ---
mkdir -p "$ROOT"/bin "$ROOT"/usr/bin "$ROOT"/usr/lib "$ROOT"/lib64 "$ROOT"/etc "$ROOT"/work
cp /bin/busybox "$ROOT"/bin/busybox
cp "$PYTHON" "$ROOT/usr/bin/$PYVER" && ln -s "$PYVER" "$ROOT"/usr/bin/python3
cp -a "/usr/lib/$PYVER" "$ROOT/usr/lib/"
rm -rf "$ROOT/usr/lib/$PYVER/test" "$ROOT/usr/lib/$PYVER/idlelib" "$ROOT/usr/lib/$PYVER/tkinter"
mkdir -p "$ROOT"/usr/lib/python3/dist-packages
# pytest and what it imports; pathlib-only copies keep the image small.
for pkg in pytest _pytest pluggy iniconfig packaging attr attrs py.py exceptiongroup tomli; do
    [ -e "/usr/lib/python3/dist-packages/$pkg" ] && cp -a "/usr/lib/python3/dist-packages/$pkg" "$ROOT/usr/lib/python3/dist-packages/"
done
# Every shared library that python and its extension modules link to.
{ ldd "$PYTHON"; find "/usr/lib/$PYVER/lib-dynload" -name '*.so' -exec ldd {} \; ; } 2>/dev/null |
    awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u | while read -r lib; do
        mkdir -p "$ROOT$(dirname "$lib")" && cp -L "$lib" "$ROOT$lib"
    done
[ -e "$ROOT"/lib64/ld-linux-x86-64.so.2 ] || cp -L /lib64/ld-linux-x86-64.so.2 "$ROOT"/lib64/
# iptables (nft flavour), for final's default bridge network: the program, its libraries, its extensions.
XTABLES=$(readlink -f /usr/sbin/iptables 2>/dev/null || true)
if [ -x "$XTABLES" ]; then
    mkdir -p "$ROOT"/usr/sbin && cp "$XTABLES" "$ROOT"/usr/sbin/
    for name in iptables iptables-restore iptables-save; do ln -sf "$(basename "$XTABLES")" "$ROOT/usr/sbin/$name"; done
    extensions=$(dirname "$(find /usr/lib -maxdepth 3 -type d -name xtables | head -n 1)")/xtables
    mkdir -p "$ROOT$extensions" && cp "$extensions"/*.so "$ROOT$extensions"/
    { ldd "$XTABLES"; for so in "$extensions"/*.so; do ldd "$so"; done; } 2>/dev/null |
        awk '/=> \//{print $3}' | sort -u | while read -r lib; do
            mkdir -p "$ROOT$(dirname "$lib")" && cp -L "$lib" "$ROOT$lib"
        done
fi
# Modules of Debian's kernel: overlayfs (chapter 4's storage driver), bridge and veth (final's
# default network), and ext4 on a virtio disk
# for the tests' files. The root is a tmpfs, which Linux idmaps only from 6.3 on, and root's
# --userns on overlay needs idmapped layers (chapter 4): on ext4 the whole suite runs.
mkdir -p "$ROOT/modules"
for module in fs/overlayfs/overlay lib/crc16 crypto/crc32c_generic lib/libcrc32c fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4 drivers/virtio/virtio \
              drivers/virtio/virtio_ring drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev \
              drivers/virtio/virtio_pci drivers/block/virtio_blk net/llc/llc net/802/stp net/bridge/bridge \
              drivers/net/veth net/netfilter/nfnetlink net/netfilter/x_tables net/ipv4/netfilter/nf_defrag_ipv4 \
              net/ipv6/netfilter/nf_defrag_ipv6 net/netfilter/nf_conntrack net/netfilter/nf_nat \
              net/netfilter/nf_tables net/netfilter/nft_compat net/netfilter/nft_chain_nat net/netfilter/nft_nat \
              net/netfilter/nft_masq net/netfilter/nft_ct net/netfilter/xt_comment net/netfilter/xt_MASQUERADE \
              net/netfilter/xt_addrtype net/netfilter/xt_conntrack net/netfilter/xt_tcpudp; do
    if [ -e "$MODULES/kernel/$module.ko" ]; then cp "$MODULES/kernel/$module.ko" "$ROOT/modules/"; fi  # else built in
done
truncate -s "${SCRATCH:-4096}M" "$WORK"/scratch.img
mkfs.ext4 -q -F "$WORK"/scratch.img
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ROOT"/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOT"/etc/group
cp /etc/os-release "$ROOT"/etc/os-release 2>/dev/null || true
mkdir -p "$ROOT"/work/dockyard
(cd "$REPO" && tar cf - --exclude=__pycache__ --exclude=.git conftest.py pyproject.toml final tests tools chapters 2>/dev/null) | tar xf - -C "$ROOT"/work/dockyard
printf '%s\n' "$@" > "$ROOT"/work/pytest-args

# Stage 1 runs on the initramfs, where pivot_root(2) is not allowed: copy
# everything onto a tmpfs and switch_root there. Stage 2 mounts cgroup2 alone
# at /sys/fs/cgroup (the kernel gets cgroup_no_v1=all) and runs pytest.
cat > "$ROOT"/init <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /newroot /proc
/bin/busybox mount -t tmpfs -o size=85% tmpfs /newroot
/bin/busybox cp -a /bin /usr /lib /lib64 /etc /work /stage2 /newroot/
[ -d /modules ] && /bin/busybox cp -a /modules /newroot/
exec /bin/busybox switch_root /newroot /stage2
EOF
cat > "$ROOT"/stage2 <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mkdir -p /proc /sys /dev /tmp /run /root /sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Each pass loads the modules whose dependencies an earlier pass loaded; the rest fail quietly.
for pass in 1 2 3 4 5 6 7 8; do for module in /modules/*.ko; do insmod "$module" 2>/dev/null; done; done
for second in 1 2 3 4 5; do [ -b /dev/vda ] && break; sleep 1; done
mkdir -p /scratch && mount -t ext4 /dev/vda /scratch && export TMPDIR=/scratch
echo "v2vm: the tests' files are on $(stat -fc %T "${TMPDIR:-/tmp}")"
hostname v2vm
ip link set lo up
echo "v2vm: kernel $(uname -r), $(nproc) cpus, /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup)," \
     "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "v2vm: cgroup mounts:"; grep cgroup /proc/self/mountinfo
cd /work/dockyard
python3 -m final info
set --
while IFS= read -r arg; do set -- "$@" "$arg"; done < /work/pytest-args
python3 -m pytest "$@"
echo "v2vm-result: pytest exited $?"
echo o > /proc/sysrq-trigger
sleep 10
EOF
chmod +x "$ROOT"/init "$ROOT"/stage2
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK"/initramfs.gz
echo "v2vm: initramfs $(du -h "$WORK"/initramfs.gz | cut -f1), kernel $KERNEL, accel ${ACCEL:-tcg}"

# --- boot, and read pytest's status off the console ---
timeout "${TIMEOUT:-1800}" qemu-system-x86_64 -accel "${ACCEL:-tcg}" -m "${MEM:-2048}" -smp "${CPUS:-2}" \
    -cpu max -nographic -no-reboot -kernel "$KERNEL" -initrd "$WORK"/initramfs.gz \
    -drive file="$WORK"/scratch.img,format=raw,if=virtio \
    -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
    | tee "$WORK"/console.log
status=$(sed -n 's/.*v2vm-result: pytest exited \([0-9]*\).*/\1/p' "$WORK"/console.log | tail -n 1)
[ -n "$status" ] || { echo "error: the VM ended without a pytest result"; exit 125; }
exit "$status"
