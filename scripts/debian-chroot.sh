#!/usr/bin/env bash
# Builds and tests this source tree inside a Debian chroot of another
# release (default: Debian 13, trixie, with sdbus-c++ 2.x), as root:
#
#   scripts/debian-chroot.sh [--release SUITE] [--bind HOSTDIR:DIR]... [COMMAND...]
#
# 1. A cached tree: `debootstrap --variant=minbase SUITE` from this machine's
#    own Debian mirror (the URIs line of /etc/apt/sources.list.d/*.sources,
#    or $L4M_DEBIAN_MIRROR), then ./scripts/install-deps.sh run inside it.
#    Kept under /var/cache/left4me-overlay-test/, keyed by suite, mirror and
#    the text of install-deps.sh (which decides the package list): built
#    beside its final place and renamed into it when complete, so an
#    interrupted run never leaves a half tree that a later run would take
#    as cached. About 3 min (debootstrap) + 3 min (packages) the first time.
# 2. Each run works on a private copy of it (the tests add users and the
#    build writes; the cache stays as made), in a private mount and PID
#    namespace whose root the copy becomes (pivot_root): proc, sys, dev,
#    /run, /tmp and the source tree (read-only, at /src) are mounted only
#    there, and every mount and every process left in it goes with the
#    namespace whatever way the run ends. The copy is removed on exit.
# 3. Inside: ./scripts/install-deps.sh again (installs nothing when the tree
#    is current; it is the script a user of that release runs), then
#    COMMAND, by default the default configuration (as scripts/test.sh
#    configures it) built in /build and the unit, root and dbus tiers run.
#    A skipped test fails the run, as in scripts/test.sh.
#
# --bind HOSTDIR:DIR bind-mounts HOSTDIR read-write at DIR in the chroot
# (e.g. a folder for packages built there). Exit status: COMMAND's.
set -euo pipefail

# All in a function: bash has read it whole before running it, so an edit
# of this file cannot change a run under way.
main() {
release=trixie
binds=()
while (($#)); do
    case "$1" in
    --release) release=$2; shift 2 ;;
    --bind) binds+=("$2"); shift 2 ;;
    --inside) shift; break ;; # internal: we are the namespace's first process
    --) shift; break ;;
    -*) echo "debian-chroot.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${L4M_CHROOT_CACHE:-/var/cache/left4me-overlay-test}

# --- inside the private namespaces: mount, run, and let the kernel clean up.
if [[ "${L4M_CHROOT_ROOT:-}" ]]; then
    root=$L4M_CHROOT_ROOT
    # The tree becomes this namespace's root mount (pivot_root, not just a
    # chroot): the executors enter HostPid's mount namespace with setns(),
    # which sets their root to that namespace's root mount. proc of this
    # PID namespace.
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount -t sysfs -o ro sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=0755 tmpfs "$root/run"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    mkdir -p "$root/src"
    mount --bind "$src" "$root/src"
    mount -o remount,bind,ro "$root/src"
    for b in "${binds[@]}"; do
        mkdir -p "$root/${b#*:}"
        mount --bind "${b%%:*}" "$root/${b#*:}"
    done
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir "$root/run/old-root"
    cd "$root"
    pivot_root . run/old-root
    umount --lazy /run/old-root
    rmdir /run/old-root
    cd /
    in_chroot=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}")
    "${in_chroot[@]}" /src/scripts/install-deps.sh
    if (($#)); then
        exec "${in_chroot[@]}" "$@"
    fi
    exec "${in_chroot[@]}" bash -euo pipefail -c '
        . /etc/os-release
        echo "debian-chroot.sh: building in $PRETTY_NAME"
        cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
            -DL4M_REQUIRE_ALL_TESTS=ON
        cmake --build /build -j"$(nproc)"
        cd /build
        status=0
        # Every test runs, the root tier fuse-overlayfs ones included: they
        # ask fuse-overlayfs its version and assert what the 1.14 of Debian
        # 13 does (Debian 12 runs them with 1.10). (No apostrophes here:
        # this is a quoted string.)
        ctest --output-on-failure -L "^(unit|root|dbus)$" 2>&1 | tee ctest-output.log || status=$?
        if grep -q "(Skipped)" ctest-output.log; then
            echo "debian-chroot.sh: tests were skipped (see above); as root every test must run" >&2
            exit 1
        fi
        exit "$status"'
fi

# --- outside: the cached tree, a copy of it, and the namespaces.
if ((EUID != 0)); then
    echo "debian-chroot.sh: run as root (debootstrap, chroot, mounts)" >&2
    exit 1
fi
mirror=${L4M_DEBIAN_MIRROR:-}
if [[ -z "$mirror" ]]; then
    # The first URIs of a stanza for the main archive (not -security).
    mirror=$(awk 'tolower($1) == "uris:" && $2 !~ /security/ { print $2; exit }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z "$mirror" ]]; then
    echo "debian-chroot.sh: no Debian mirror in /etc/apt/sources.list.d/*.sources; set L4M_DEBIAN_MIRROR" >&2
    exit 1
fi

key=$(printf '%s\n' "$release" minbase "$mirror" | cat - "$src/scripts/install-deps.sh" |
    sha256sum | cut -c1-12)
entry="$cache/$release-build-$key"
mkdir -p "$cache"
work="$entry.building"
run="$cache/.run-$$"
# A signal ends the run through the EXIT trap too.
trap 'rm -rf --one-file-system "$run"' EXIT
trap 'exit 130' INT TERM HUP
# Runs of the same tree wait for each other while it is made and copied;
# a .building or .run-PID folder left by a killed run is removed here.
exec 9>"$entry.lock"
flock 9
for old in "$cache"/.run-*; do
    [[ -d "$old" ]] && ! kill -0 "${old##*-}" 2>/dev/null && rm -rf --one-file-system "$old"
done
if [[ ! -f "$entry/complete" ]]; then
    rm -rf --one-file-system "$work"
    mkdir "$work"
    echo "debian-chroot.sh: debootstrap $release from $mirror, then install-deps.sh (cached in $entry)" >&2
    debootstrap --variant=minbase "$release" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # install-deps.sh in the new tree, in the same namespaces as a run.
    L4M_CHROOT_ROOT="$work/root" unshare --mount --pid --fork --kill-child --propagation private \
        "$0" --release "$release" --inside true
    chroot "$work/root" apt-get clean
    printf '%s minbase %s install-deps.sh:%s\n' "$release" "$mirror" \
        "$(sha256sum <"$src/scripts/install-deps.sh" | cut -c1-12)" >"$work/complete"
    rm -rf --one-file-system "$entry"
    mv "$work" "$entry"
fi
mkdir "$run"
cp -a --reflink=auto "$entry/root" "$run/root"
flock -u 9

inner=(--release "$release")
for b in "${binds[@]}"; do
    inner+=(--bind "$b")
done
L4M_CHROOT_ROOT="$run/root" unshare --mount --pid --fork --kill-child --propagation private \
    "$0" "${inner[@]}" --inside "$@"
}

main "$@"; exit # one line: read before main runs
