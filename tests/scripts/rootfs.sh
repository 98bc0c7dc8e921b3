#!/usr/bin/env bash
# Builds a root filesystem for containers in DIR, or does nothing if DIR already holds a
# complete one of the same kind (DIR/.rootfs-stamp, written last).
#
#   tests/scripts/rootfs.sh busybox DIR   Debian's static busybox with a link for every
#                                          applet, /etc/passwd and /etc/group (about 2 MB)
#   tests/scripts/rootfs.sh debian DIR    Debian minbase from debootstrap (as root; about
#                                          175 MB; SUITE, default bookworm; MIRROR, default
#                                          http://deb.debian.org/debian), apt's .deb cache removed
#
# The rootfs is built in DIR.partial and renamed to DIR when complete, so an interrupted
# build never leaves a DIR that looks finished. An existing DIR that is neither empty nor
# stamped is refused rather than overwritten. Installs busybox-static or debootstrap with
# apt if missing. Exits non-zero on failure.
set -euo pipefail

usage() { echo "usage: $0 busybox|debian DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
kind=$1
dir=$2
case $kind in busybox | debian) ;; *) usage ;; esac
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
dir=${dir%/}
[ -n "$dir" ] && [ "$dir" != / ] || { echo "$0: refusing to build in /" >&2; exit 2; }
stamp=.rootfs-stamp

if [ -f "$dir/$stamp" ] && [ "$(head -n1 "$dir/$stamp")" = "$kind" ]; then
    echo "rootfs: $dir already holds a $kind rootfs ($(sed -n 2p "$dir/$stamp"))"
    exit 0
fi
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "$0: $dir exists and is not a complete $kind rootfs (no $stamp saying $kind); remove it first" >&2
    exit 1
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
need() { # need PACKAGE: installs it with apt if dpkg does not know it
    dpkg -s "$1" >/dev/null 2>&1 && return
    $sudo apt-get update -qq || echo "$0: apt-get update failed; trying the install anyway" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$1"
}

# An earlier interrupted build: debootstrap mounts proc and sys in its target, so
# unmount anything left there before removing it (and never cross into another fs).
partial=$dir.partial
unmount_under() {
    local m
    findmnt -rn -o TARGET | awk -v p="$1" 'index($0, p "/") == 1 || $0 == p' | sort -r |
        while read -r m; do $sudo umount "$m" 2>/dev/null || $sudo umount -l "$m"; done
}
if [ -e "$partial" ]; then
    unmount_under "$partial"
    $sudo rm -rf --one-file-system "$partial"
fi
trap 'unmount_under "$partial"; $sudo rm -rf --one-file-system "$partial"' EXIT
start=$(date +%s.%N)

case $kind in
busybox)
    need busybox-static
    bb=/bin/busybox
    mkdir -p "$partial"
    (
        cd "$partial"
        mkdir -p bin sbin usr/bin usr/sbin dev proc sys etc root run var/tmp tmp
        chmod 1777 tmp var/tmp
        chmod 700 root
        cp "$bb" bin/busybox
        # --list-full gives each applet's usual place (bin/ls, usr/bin/env, sbin/init, ...).
        for applet in $(bin/busybox --list-full); do
            [ -e "$applet" ] || [ -L "$applet" ] || ln -s /bin/busybox "$applet"
        done
        printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >etc/passwd
        printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >etc/group
    )
    version=$("$partial/bin/busybox" 2>&1 | awk 'NR == 1 { print $1, $2 }')
    ;;
debian)
    [ "$(id -u)" = 0 ] || { echo "$0: debootstrap needs root" >&2; exit 1; }
    need debootstrap
    suite=${SUITE:-bookworm}
    mirror=${MIRROR:-http://deb.debian.org/debian}
    debootstrap --variant=minbase "$suite" "$partial" "$mirror" >"$partial.log" 2>&1 || {
        tail -n 20 "$partial.log" >&2
        echo "$0: debootstrap failed (log: $partial.log)" >&2
        exit 1
    }
    rm -f "$partial.log"
    rm -f "$partial"/var/cache/apt/archives/*.deb "$partial"/var/cache/apt/*.bin
    unmount_under "$partial"
    version="debian $(cat "$partial/etc/debian_version") ($suite minbase)"
    ;;
esac

printf '%s\n%s, built %s\n' "$kind" "$version" "$(date -u +%FT%TZ)" >"$partial/$stamp"
[ -d "$dir" ] && rmdir "$dir"
mv "$partial" "$dir"
trap - EXIT
echo "rootfs: built a $kind rootfs in $dir ($version, $(du -sh "$dir" | cut -f1)," \
    "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
