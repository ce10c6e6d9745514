#!/usr/bin/env bash
# Run it on a fresh Debian 12 machine, as root: installs the dependencies,
# builds and installs the Debian package, makes sure a system bus and polkit
# answer (starting them where the machine runs none, as in a container),
# creates the demo instance `demo` and mounts it through the service as the
# host manager's user (group left4me). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

say "dependencies"
./scripts/install-deps.sh

say "build the package (packaging/build-deb.sh)"
out=build-demo
rm -f "$out"/left4me-overlay_*.deb "$out"/left4me-overlay-dbgsym_*.deb
packaging/build-deb.sh "$out" >/dev/null
deb=$(ls "$out"/left4me-overlay_*.deb)

say "system bus and polkit"
bus_answers() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
              org.freedesktop.DBus.GetId >/dev/null 2>&1
}
if ! bus_answers; then
    # No system bus (a container without systemd): start one as Debian
    # configures it; it forks and writes /run/dbus/pid.
    mkdir -p /run/dbus
    rm -f /run/dbus/pid
    dbus-daemon --system
    for _ in $(seq 50); do bus_answers && break; sleep 0.1; done
    bus_answers || { echo "demo: the system bus did not come up" >&2; exit 1; }
    echo "started a system dbus-daemon (pid $(cat /run/dbus/pid))"
else
    echo "a system bus is running"
fi

say "install $deb"
apt-get install -y -qq "./$deb" >/dev/null
# The bus reads its policy files at start and on reload; polkitd is started
# by the bus on first use (bus activation) where no systemd runs.
dbus-send --system --type=method_call --dest=org.freedesktop.DBus / \
          org.freedesktop.DBus.ReloadConfig
if ! busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1; then
    busctl --system call org.freedesktop.DBus / org.freedesktop.DBus StartServiceByName su \
           org.freedesktop.PolicyKit1 0 >/dev/null
fi
echo "polkitd answers: $(busctl --system get-property org.freedesktop.PolicyKit1 \
      /org/freedesktop/PolicyKit1/Authority org.freedesktop.PolicyKit1.Authority BackendName)"

conf=/etc/left4me/overlay.conf
if ! readlink /proc/1/ns/mnt >/dev/null 2>&1; then
    # Here PID 1's mount namespace cannot be opened (a sandboxed container):
    # name a long-lived process of the host namespace instead, the bus daemon.
    sed -i '/^HostPid=/d' "$conf"
    echo "HostPid=$(cat /run/dbus/pid)" >> "$conf"
    echo "PID 1's mount namespace is not reachable here: HostPid=$(cat /run/dbus/pid) in $conf"
fi

say "demo instance"
getent passwd left4me >/dev/null ||
    useradd --system --gid left4me --home-dir /var/lib/left4me --shell /usr/sbin/nologin left4me
root=/var/lib/left4me
mkdir -p "$root"/installation/left4dead2/cfg "$root"/overlays/demo-mod/cfg \
         "$root"/instances/demo/{upper,work,merged}
echo 'hostname "left4me base install"' > "$root"/installation/left4dead2/cfg/server.cfg
echo 'motd from the base install' > "$root"/installation/left4dead2/motd.txt
echo 'hostname "left4me demo (from overlays/demo-mod)"' > "$root"/overlays/demo-mod/cfg/server.cfg
cat > "$root"/instances/demo/instance.env <<ENV
# written by the host manager; read by left4me-overlay as untrusted input
L4D2_LOWERDIRS="$root/overlays/demo-mod:$root/installation/left4dead2"
ENV
chown -R left4me:left4me "$root"
# 0750, group left4me: in a 0755 instance any local user could keep Unmount
# Busy by holding a working directory inside merged.
chmod 0750 "$root"/instances/demo

as_host_manager() { setpriv --reuid=left4me --regid=left4me --init-groups "$@"; }
if left4me-overlayctl status demo | grep -q 'Mounted: yes'; then
    as_host_manager left4me-overlayctl unmount demo
fi
say "left4me-overlayctl mount demo   (as user left4me, group left4me: no password)"
as_host_manager left4me-overlayctl mount demo
left4me-overlayctl status demo
left4me-overlayctl list
echo "merged/cfg/server.cfg: $(cat "$root"/instances/demo/merged/cfg/server.cfg)"
grep ' left4me:demo ' /proc/self/mountinfo | cut -d' ' -f5,9,10

cat <<'DONE'

The service answers on the system bus as org.left4me.Overlay1 (bus-activated,
it exits after 30 idle seconds and starts again on the next call). Try:
  busctl call org.left4me.Overlay1 /org/left4me/Overlay1 org.left4me.Overlay1 GetStatus s demo
  setpriv --reuid=left4me --regid=left4me --init-groups left4me-overlayctl unmount demo
  left4me-overlayctl mount demo        # as another user: asks for an admin password
DONE
