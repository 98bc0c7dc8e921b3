#!/usr/bin/env bash
# Runs runsc-rs on standard (AMD SVM) KVM without KVM hardware: QEMU with software emulation
# (-accel tcg -cpu max) emulates SVM well enough for the stock kvm_amd of Debian's own kernel
# to load, so /dev/kvm inside that machine is ordinary KVM (../shared/research/kvm-under-tcg.md).
#
#   scripts/kvm-tcg.sh                      # the checks on --platform kvm
#   PLATFORM=ptrace scripts/kvm-tcg.sh      # the same checks on --platform ptrace
#
# It installs what it needs, fetches Debian's kernel (never installed on this machine), builds
# a static runsc-rs and an initramfs holding it, busybox-static, the KVM modules and two small
# static C tests, boots that with QEMU and reads the checks' results from the serial console:
# `runsc-rs do --platform $PLATFORM --rootfs /` on busybox echo, `sh -c 'exit 7'`, a fault
# test and a signal test, each compared with the same program run natively in the machine.
# Exits non-zero if a check fails or the machine does not finish. Downloads and build products
# are kept in target/kvm-tcg/ (KVM_TCG_CACHE), so a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PLATFORM=${PLATFORM:-kvm}
cache=${KVM_TCG_CACHE:-$repo/target/kvm-tcg}
timeout_secs=300
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

# Phase timing: every phase prints its wall time; the list is repeated at the end.
phases=()
phase_t0=0
phase() {
    phase_name=$1
    phase_t0=$(date +%s.%N)
    echo "== kvm-tcg: $phase_name"
}
phase_done() {
    local secs
    secs=$(awk -v a="$phase_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    phases+=("$(printf '%-22s %7s s' "$phase_name" "$secs")")
    echo "== kvm-tcg: $phase_name: $secs s"
}
die() {
    echo "scripts/kvm-tcg.sh: $*" >&2
    exit 1
}

# A private apt configuration for Debian 12 (bookworm, its updates and security, and
# bookworm-backports), with its own lists and archive directories in the cache: the
# machine's own sources, lists and package cache are left as they are.
apt_dir=$cache/apt
apt_opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "APT::Sandbox::User=root" -o "DPkg::Lock::Timeout=600"
)
apt_ready=no
private_apt_update() {
    [ $apt_ready = yes ] && return
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
    local key=/usr/share/keyrings/debian-archive-keyring.gpg
    cat >"$apt_dir/sources.list" <<EOF
deb [signed-by=$key] http://deb.debian.org/debian bookworm main
deb [signed-by=$key] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$key] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=$key] http://deb.debian.org/debian bookworm-backports main
EOF
    $sudo apt-get "${apt_opts[@]}" -qq update
    apt_ready=yes
}

# ---------------------------------------------------------------------------------------
phase "install packages"
packages=(busybox-static gcc libc6-dev binutils file debian-archive-keyring)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$cache/apt-install.log" 2>&1 || {
        cat "$cache/apt-install.log" >&2
        die "installing ${missing[*]} failed"
    }
fi
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if ! command -v qemu-system-x86_64 >/dev/null && [ "$codename" != bookworm ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 >"$cache/apt-install.log" 2>&1 || {
        cat "$cache/apt-install.log" >&2
        die "installing QEMU failed"
    }
elif ! command -v qemu-system-x86_64 >/dev/null; then
    # On Debian 12, QEMU 10 from bookworm-backports, not QEMU 7.2 from bookworm: our
    # machines' image ships qemu-utils 10.0.2 from backports, and installing bookworm's
    # qemu-system-x86 would replace it with 7.2 (apt removes it). Taking qemu-system-x86 and
    # qemu-utils both from backports keeps that qemu-utils. Nothing in the project uses
    # qemu-utils; this only leaves the machine as it was. (Both QEMU versions pass.)
    private_apt_update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get "${apt_opts[@]}" install -y -qq \
        --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils \
        >"$cache/apt-install.log" 2>&1 || {
        cat "$cache/apt-install.log" >&2
        die "installing QEMU failed"
    }
fi
echo "qemu: $(qemu-system-x86_64 --version | head -1)"
phase_done

# ---------------------------------------------------------------------------------------
# Debian 12's kernel (linux-image-amd64 → linux-image-6.1.0-N-amd64), downloaded with
# apt-get download and unpacked with dpkg-deb -x into the cache; it is never installed.
phase "kernel (fetch, unpack)"
kernel_dir=$cache/kernel
vmlinuz=$(ls "$kernel_dir"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$vmlinuz" ]; then
    private_apt_update
    pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 |
        sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
    [ -n "$pkg" ] || die "cannot tell which kernel linux-image-amd64 depends on"
    rm -rf "$cache/dl" "$kernel_dir.new"
    mkdir -p "$cache/dl"
    (cd "$cache/dl" && apt-get "${apt_opts[@]}" -qq download "$pkg")
    dpkg-deb -x "$cache"/dl/"$pkg"_*.deb "$kernel_dir.new"
    # Keep the kernel and the four modules the machine loads (400 MB → 15 MB).
    find "$kernel_dir.new/lib/modules" -type f ! -name 'irqbypass.ko*' ! -name 'kvm.ko*' \
        ! -name 'ccp.ko*' ! -name 'kvm-amd.ko*' -delete
    find "$kernel_dir.new/usr" "$kernel_dir.new/boot" -type f ! -name 'vmlinuz-*' -delete
    rm -rf "$kernel_dir" "$cache/dl"
    mv "$kernel_dir.new" "$kernel_dir"
    vmlinuz=$(ls "$kernel_dir"/boot/vmlinuz-* | sort -V | tail -1)
fi
kver=${vmlinuz##*/vmlinuz-}
echo "kernel: $kver"
phase_done

# ---------------------------------------------------------------------------------------
# runsc-rs, statically linked (glibc, static-pie): the initramfs has no libc. Its own target
# directory, since RUSTFLAGS differ from the usual builds'.
phase "static runsc-rs build"
cargo_dir=$cache/cargo
RUSTFLAGS='-C target-feature=+crt-static' nice -n 10 cargo build --release -p runsc-rs \
    --target x86_64-unknown-linux-gnu --target-dir "$cargo_dir"
runsc=$cargo_dir/x86_64-unknown-linux-gnu/release/runsc-rs
file_says=$(file -b "$runsc")
case "$file_says" in
*"static-pie linked"* | *"statically linked"*) ;;
*) die "$runsc is not static: $file_says" ;;
esac
ldd_says=$(ldd "$runsc" 2>&1 || true)
case "$ldd_says" in
*"statically linked"* | *"not a dynamic executable"*) ;;
*) die "$runsc is not static (ldd): $ldd_says" ;;
esac
hi=$("$runsc" do --platform ptrace -- /bin/busybox echo hi) ||
    die "the static runsc-rs failed on this machine (--platform ptrace)"
[ "$hi" = hi ] || die "the static runsc-rs printed '$hi', not 'hi'"
echo "runsc-rs: static ($file_says); runs busybox echo here on --platform ptrace"
unknown_platform=""
if ! "$runsc" do --platform "$PLATFORM" --help >/dev/null 2>&1; then
    why=$("$runsc" do --platform "$PLATFORM" --help 2>&1 || true)
    unknown_platform="runsc-rs does not know --platform $PLATFORM: $(head -2 <<<"$why" |
        tr -s '\n ' ' ')"
    echo "scripts/kvm-tcg.sh: $unknown_platform(booting anyway: the checks will fail)" >&2
fi
phase_done

# ---------------------------------------------------------------------------------------
phase "initramfs"
root=$cache/root
rm -rf "$root"
mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules/kvm}
cp /bin/busybox "$root/bin/busybox"
file -b "$root/bin/busybox" | grep -q "statically linked" || die "/bin/busybox is not static"
ln -s busybox "$root/bin/sh"
cp scripts/kvm-tcg/init "$root/init"
# Symbols stay (panics name their functions); the debug info would triple the size.
strip --strip-debug -o "$root/bin/runsc-rs" "$runsc"
for t in fault signal; do
    gcc -O2 -static -Wall -Wextra -Werror -o "$root/bin/$t" "scripts/kvm-tcg/$t.c"
done
# busybox insmod passes the file to init_module as it is: decompress .ko.xz/.ko.zst here.
for m in irqbypass kvm ccp kvm-amd; do
    ko=$(find "$kernel_dir/lib/modules/$kver" -name "$m.ko*" | head -1)
    [ -n "$ko" ] || die "module $m not found in $kernel_dir/lib/modules/$kver"
    case "$ko" in
    *.ko) cp "$ko" "$root/lib/modules/kvm/$m.ko" ;;
    *.ko.xz) xz -dc "$ko" >"$root/lib/modules/kvm/$m.ko" ;;
    *.ko.zst) zstd -qdc "$ko" >"$root/lib/modules/kvm/$m.ko" ;;
    *) die "module $ko: unknown compression" ;;
    esac
done
initrd=$cache/initramfs.cpio.gz
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$initrd"
echo "initramfs: $(du -h "$initrd" | cut -f1)"
phase_done

# ---------------------------------------------------------------------------------------
phase "boot and checks (qemu)"
console=$cache/console.log
set +e
timeout -k 5 "$timeout_secs" qemu-system-x86_64 -accel tcg -cpu max -m 2G -smp 2 \
    -nographic -no-reboot -monitor none -serial stdio -nodefaults \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=4 runsc_platform=$PLATFORM" \
    </dev/null 2>&1 | tee "$console"
qemu_status=${PIPESTATUS[0]}
set -e
phase_done

# ---------------------------------------------------------------------------------------
echo
echo "== kvm-tcg: summary (platform $PLATFORM, kernel $kver, log $console)"
failed=0
results=$(tr -d '\r' <"$console" | grep -a '^CHECK ' || true)
printf '%-12s %-6s %s\n' CHECK RESULT DETAIL
while read -r _ name result detail; do
    [ -n "${name:-}" ] || continue
    printf '%-12s %-6s %s\n' "$name" "$result" "$detail"
    [ "$result" = PASS ] || failed=$((failed + 1))
done <<<"$results"
checks=$(grep -c . <<<"$results" || true)
finished=yes
tr -d '\r' <"$console" | grep -aq '^KVMTCG DONE' || finished=no
echo
echo "phases:"
printf '  %s\n' "${phases[@]}"
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    die "the machine did not finish within $timeout_secs s"
fi
[ "$qemu_status" = 0 ] || die "qemu exited with status $qemu_status"
[ $finished = yes ] || die "the machine stopped before the checks finished (see $console)"
[ "$checks" -ge 5 ] || die "only $checks checks reported (see $console)"
[ -z "$unknown_platform" ] || die "$failed of $checks checks failed: $unknown_platform"
[ $failed = 0 ] || die "$failed of $checks checks failed on --platform $PLATFORM"
echo "scripts/kvm-tcg.sh: all $checks checks passed on --platform $PLATFORM"
