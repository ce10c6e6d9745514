#!/usr/bin/env bash
# pip install of clients/python into a fresh plain virtualenv (no
# --system-site-packages): the package builds, installs, declares its one
# dependency (jeepney) and imports from the virtualenv.
#
#   pip_install_test.sh SOURCE_DIR WORK_DIR
#
# Offline by default (CI machines may not reach PyPI): the wheel is built by
# the system's pip with the system's setuptools and wheel (python3-pip,
# python3-setuptools, python3-wheel; --no-build-isolation, --no-deps) and
# installed into the virtualenv with --no-index; jeepney then comes from
# Debian's python3-jeepney through a .pth naming a folder that holds only
# jeepney and its dist-info, so nothing else of the system's site-packages shows. With
# L4M_PIP_ONLINE=1 the virtualenv's pip installs the source folder with
# build isolation and fetches jeepney from PyPI instead.
set -euo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cp -r "$src" "$work/src"           # builds write egg-info next to the sources
rm -rf "$work/src/tests"
/usr/bin/python3 -m venv "$work/venv"
py=$work/venv/bin/python
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

if [[ "${L4M_PIP_ONLINE:-}" == 1 ]]; then
    "$py" -m pip install -q "$work/src"
else
    /usr/bin/python3 -m pip wheel -q --no-index --no-deps --no-build-isolation -w "$work/dist" "$work/src"
    ls "$work"/dist/left4me_overlay-*-py3-none-any.whl
    "$py" -m pip install -q --no-index --no-deps "$work"/dist/left4me_overlay-*.whl
    # Without jeepney the install is incomplete, and pip says why.
    if "$py" -m pip check > "$work/check.txt" 2>&1; then
        echo "pip check passed without jeepney installed"; cat "$work/check.txt"; exit 1
    fi
    grep -q "left4me-overlay 0.1.0 requires jeepney, which is not installed" "$work/check.txt" \
        || { cat "$work/check.txt"; exit 1; }
    mkdir "$work/jeepney-only"
    jeepney=$(/usr/bin/python3 -c 'import jeepney, os; print(os.path.dirname(jeepney.__file__))')
    ln -s "$jeepney" "$work/jeepney-only/jeepney"
    ln -s "$jeepney"-*.dist-info "$work/jeepney-only/"   # its metadata, for pip
    echo "$work/jeepney-only" > "$site/debian-jeepney.pth"
fi

"$py" -m pip show left4me-overlay | grep -x "Requires: jeepney" >/dev/null
"$py" -m pip check
cd "$work"                         # not the source folder: import what pip installed
"$py" - "$site" <<'PY'
import importlib.util
import inspect
import sys

site = sys.argv[1]
import left4me_overlay
from left4me_overlay import DBusOverlayMounter, OverlayError, NoSuchInstance

assert left4me_overlay.__file__.startswith(site + "/"), left4me_overlay.__file__
# a plain virtualenv: the system's other modules stay hidden
assert importlib.util.find_spec("dbus") is None, "python3-dbus visible in the venv"
assert importlib.util.find_spec("l4d2host") is None
assert DBusOverlayMounter.__bases__ == (object,)  # no host manager installed here
params = list(inspect.signature(DBusOverlayMounter.mount).parameters)
assert params == ["self", "lowerdirs", "upperdir", "workdir", "merged", "on_stdout",
                  "on_stderr", "passthrough", "should_cancel"], params
e = left4me_overlay.error_from_dbus("org.left4me.Overlay1.Error.NoSuchInstance", "gone")
assert isinstance(e, NoSuchInstance) and isinstance(e, OverlayError) and e.name.endswith(
    "NoSuchInstance") and e.message == "gone"
print("imported", left4me_overlay.__file__, "with jeepney from",
      importlib.util.find_spec("jeepney").origin)
PY
