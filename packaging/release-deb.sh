#!/usr/bin/env bash
# packaging/release-deb.sh RELEASE build OUTDIR
# packaging/release-deb.sh RELEASE check OUTDIR VERSION
#
# The Debian package for one release (bookworm = Debian 12, trixie =
# Debian 13), built and checked on that release: a package takes its
# library dependencies (libsdbus-c++1 or 2, libspdlog1.10 or 1.15, ...) and
# its file layout from the system it is built on, and lintian's verdict
# from the lintian it is checked with.
#
#   build   empties OUTDIR, then packaging/build-deb.sh OUTDIR
#   check   packaging/check_deb.py --debs OUTDIR --version VERSION
#           (that release's lintian, scripts, control, hardening, files)
#
# On a machine of that release both run here; for the other release they
# run in its cached build chroot (scripts/debian-chroot.sh, which
# debootstraps it and runs scripts/install-deps.sh in it the first time;
# the source tree is at /src there, OUTDIR at /out). The tests
# (packaging.build-deb.RELEASE, packaging.deb.RELEASE, system.RELEASE) and
# CI call this; it needs root for the chroot.
set -euo pipefail

usage() {
    echo "usage: packaging/release-deb.sh bookworm|trixie build OUTDIR" >&2
    echo "       packaging/release-deb.sh bookworm|trixie check OUTDIR VERSION" >&2
    exit 2
}
[[ $# -ge 3 ]] || usage
release=$1 verb=$2
case $release in bookworm|trixie) ;; *) usage ;; esac
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$3"
out=$(cd "$3" && pwd)

host=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# Runs "$@" on RELEASE in the source tree's top folder; the word @OUT@ in
# it stands for OUTDIR.
on_release() {
    local args=() a
    if [[ $release == "$host" ]]; then
        for a in "$@"; do args+=("${a//@OUT@/$out}"); done
        (cd "$src" && "${args[@]}")
    elif [[ $EUID -ne 0 ]]; then
        # ctest's SKIP_RETURN_CODE: a developer's non-root build skips it.
        echo "release-deb.sh: the $release chroot needs root: skipped" >&2
        exit 77
    else
        for a in "$@"; do args+=("${a//@OUT@//out}"); done
        "$src/scripts/debian-chroot.sh" --release "$release" --bind "$out:/out" \
            bash -c 'cd /src && exec "$@"' release-deb "${args[@]}"
    fi
}

case $verb in
build)
    [[ $# -eq 3 ]] || usage
    # Emptied first: the fixture's folder holds exactly one package, the
    # one of this run (build-deb.sh only adds files).
    find "$out" -mindepth 1 -delete
    on_release packaging/build-deb.sh @OUT@
    ;;
check)
    [[ $# -eq 4 ]] || usage
    on_release python3 packaging/check_deb.py --source-dir . --version "$4" --debs @OUT@
    ;;
*) usage ;;
esac
