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
# run in its cached build chroot (scripts/CHROOT, which debootstraps it and
# runs scripts/install-deps.sh in it the first time). The tests
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

# Runs "$@" (paths inside the source tree relative to it) on RELEASE, with
# the source tree and OUTDIR at the same paths as here.
on_release() {
    if [[ $release == "$host" ]]; then
        (cd "$src" && "$@")
    elif [[ $EUID -ne 0 ]]; then
        # ctest's SKIP_RETURN_CODE: a developer's non-root build skips it.
        echo "release-deb.sh: the $release chroot needs root: skipped" >&2
        exit 77
    else
        echo "release-deb.sh: no chroot runner for $release yet" >&2
        exit 1
    fi
}

case $verb in
build)
    [[ $# -eq 3 ]] || usage
    # Emptied first: the fixture's folder holds exactly one package, the
    # one of this run (build-deb.sh only adds files).
    find "$out" -mindepth 1 -delete
    on_release packaging/build-deb.sh "$out"
    ;;
check)
    [[ $# -eq 4 ]] || usage
    on_release python3 packaging/check_deb.py --source-dir . --version "$4" --debs "$out"
    ;;
*) usage ;;
esac
