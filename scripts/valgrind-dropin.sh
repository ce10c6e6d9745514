#!/usr/bin/env bash
# Run by scripts/sanitizers.sh inside `unshare --mount --propagation
# private`: the drop-in command (ARG 1, a plain build) mounts and unmounts a
# sample instance under valgrind, with HostPid at this shell, so the overlay
# lands in this private namespace. valgrind --error-exitcode=1 fails on any
# memory error or definite/indirect/possible leak, for each of the three
# legacy mount path (MountApi=legacy): valgrind 3.19 (Debian 12) knows
# neither openat2 (437) nor fsopen/fsconfig/fsmount/move_mount (430-433)
# and answers them ENOSYS without making them. For openat2 the core falls
# back to its O_NOFOLLOW walk (as in a seccomp sandbox), which is what runs
# here; the new mount API paths cannot run under valgrind at all (the ASan
# run of the root tier covers them).
set -euo pipefail
dropin=$1
[[ $(readlink /proc/self/ns/mnt) != $(readlink /proc/1/ns/mnt) ]] ||
    { echo "valgrind-dropin.sh: not in a private mount namespace" >&2; exit 2; }
tmp=$(mktemp -d /tmp/l4m-valgrind.XXXXXX)
mount -t tmpfs -o mode=0755 tmpfs "$tmp"
trap 'umount -R -l "$tmp"; rmdir "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/installation "$root"/overlays/mod1 "$root"/instances/vg/{upper,work,merged}
echo base >"$root/installation/base.txt"
echo mod >"$root/overlays/mod1/mod.txt"
echo "L4D2_LOWERDIRS=$root/overlays/mod1:$root/installation" >"$root/instances/vg/instance.env"

log=$tmp/valgrind.log
vg=(valgrind --log-file="$log" --trace-children=no --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --track-fds=no)
for api in legacy; do
    conf=$tmp/overlay-$api.conf
    printf 'Root=%s\nAllowedLowerRoots=installation overlays\nHostPid=%d\nMountApi=%s\nLockDir=%s\n' \
        "$root" $$ "$api" "$tmp/locks" >"$conf"
    chmod 0644 "$conf"
    for verb in mount umount; do
        if ! "${vg[@]}" "$dropin" --config "$conf" "$verb" vg; then
            grep -v -e 'unhandled amd64-linux syscall: 437' -e 'your own handler' \
                -e README_MISSING -e 'consider this a bug' -e bug_reports "$log" >&2
            echo "valgrind-dropin.sh: $verb failed under valgrind" >&2
            exit 1
        fi
        if [[ $verb == mount ]]; then
            grep -q " $root/instances/vg/merged .* - overlay left4me:vg " /proc/self/mountinfo ||
                { echo "valgrind-dropin.sh: no overlay after mount" >&2; exit 1; }
            [[ $(cat "$root/instances/vg/merged/mod.txt") == mod ]]
        fi
    done
    ! grep -q " $root/instances/vg/merged " /proc/self/mountinfo ||
        { echo "valgrind-dropin.sh: $api: still mounted after umount" >&2; exit 1; }
    echo "valgrind: mount and umount with MountApi=$api: no errors, no leaks"
done
