#!/usr/bin/env bash
# packaging/build-deb.sh OUTDIR
#
# Builds the Debian package(s) of this source tree and puts them into
# OUTDIR: left4me-overlay_VERSION_ARCH.deb, its -dbgsym .ddeb, the .changes
# and .buildinfo. The one way the project makes packages: the demo, the
# system tier and CI call it.
#
# It copies the source tree (with uncommitted changes, without build
# folders) and packaging/debian/ as its debian/ into a scratch folder and
# runs `dpkg-buildpackage -b` there (dh with the cmake build system), so
# the work tree is never written to. The version is the one in
# packaging/debian/changelog. Needs the Build-Depends of
# packaging/debian/control (scripts/install-deps.sh installs them);
# runs as any user (Rules-Requires-Root: no).
#
# Environment: L4M_BUILD_JOBS (default: nproc) parallel compile jobs.
set -euo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: packaging/build-deb.sh OUTDIR" >&2
    exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
jobs=${L4M_BUILD_JOBS:-$(nproc)}

work=$(mktemp -d "${TMPDIR:-/tmp}/left4me-overlay-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/left4me-overlay

# The source: in a git checkout, the tracked files and the untracked ones
# git does not ignore (so uncommitted work is packaged, build trees are
# not); elsewhere (an unpacked tarball), everything but build*/ folders.
mkdir "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$src" && while IFS= read -r -d '' f; do
             [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"
         done) |
        tar -C "$src" --null --no-recursion -T - -cf - | tar -C "$tree" -xf -
else
    tar -C "$src" --exclude='./build*' --exclude='./debian' --exclude='./.git' -cf - . | tar -C "$tree" -xf -
fi
rm -rf "$tree/debian"
cp -a "$src/packaging/debian" "$tree/debian"

(cd "$tree" && DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
     dpkg-buildpackage -b -us -uc --no-sign >"$work/build.log" 2>&1) || {
    tail -n 60 "$work/build.log" >&2
    echo "build-deb.sh: dpkg-buildpackage failed (log above)" >&2
    exit 1
}

shopt -s nullglob
made=("$work"/*.deb "$work"/*.ddeb "$work"/*.changes "$work"/*.buildinfo)
cp "${made[@]}" "$out"/
for f in "${made[@]}"; do
    echo "$out/${f##*/}"
done
