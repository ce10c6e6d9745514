#!/usr/bin/env bash
# `cmake --install` puts the module's .py files (and nothing else of it)
# into the Debian python3 path, where the system python3 imports it.
#
#   cmake_install_test.sh BUILD_DIR WORK_DIR PYTHON_DIR
set -euo pipefail
build=$1
work=$2
pydir=$3
rm -rf "$work"
mkdir -p "$work"
DESTDIR="$work/root" cmake --install "$build" > "$work/install.log"
mod="$work/root$pydir/left4me_overlay"
got=$(cd "$mod" && find . -mindepth 1 | sort | tr '\n' ' ')
want="./__init__.py ./client.py ./errors.py ./mounter.py "
if [[ "$got" != "$want" ]]; then
    echo "installed in $mod: '$got', expected '$want'"; exit 1
fi
cd "$work"
/usr/bin/python3 -B -c "
import sys
sys.path.insert(0, '$work/root$pydir')
import left4me_overlay
assert left4me_overlay.__file__ == '$mod/__init__.py', left4me_overlay.__file__
print('installed and imported:', left4me_overlay.__file__)
"
