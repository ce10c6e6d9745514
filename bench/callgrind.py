"""Instructions per pair: `bench/run.sh --only callgrind` (opt-in).

Time on this shared 2-core machine moves by 2x between runs; instruction
counts do not. So the daemon is restarted under `valgrind --tool=callgrind`
(its executors run natively: valgrind does not follow the exec) and its
counters are dumped (`callgrind_control --dump`, which also zeroes them)
around each part:

- warm-up (member and root pairs): discarded;
- PAIRS Mount+Unmount pairs by the member (two polkit checks each);
- PAIRS pairs by root (no polkit check).

(polkitd does not survive callgrind_control here: its CPU per check, with
and without a cancellation id, is a row of `--only pairs`.)

Prints the totals and, for the daemon's member pairs, the functions with
the most instructions per pair (self and inclusive). The dumps stay in
/tmp/l4m-callgrind/ for `callgrind_annotate`. Valgrind slows the daemon
down about fifty times: the part takes a few minutes.
"""

import os
import re
import shutil
import subprocess
import time

OUT = "/tmp/l4m-callgrind"
VALGRIND = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--collect-jumps=no"]


def valgrind(program, name):
    return VALGRIND + ["--callgrind-out-file=%s/%s.%%p" % (OUT, name), program]


def wait_for_name(fx, name, proc, what, timeout=120):
    """The fixture's own wait, with time for valgrind's start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fx.name_has_owner(name):
            return
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s:\n%s" % (what, proc.returncode, fx.log(what)))
        time.sleep(0.1)
    raise RuntimeError("%s did not own %s in %s s" % (what, name, timeout))


def dump(pid, label):
    """Dumps pid's counters since its last dump (callgrind zeroes them) and
    returns the dump's file."""
    before = set(os.listdir(OUT))
    res = subprocess.run(["callgrind_control", "--dump=" + label, str(pid)],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("callgrind_control --dump %d: %s%s" % (pid, res.stdout, res.stderr))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for f in sorted(set(os.listdir(OUT)) - before):
            path = os.path.join(OUT, f)
            with open(path, errors="replace") as fh:
                text = fh.read()
            if re.search(r"^totals:", text, re.M):
                return path
        time.sleep(0.2)
    raise RuntimeError("no dump of %d appeared" % pid)


def total_ir(path):
    with open(path, errors="replace") as f:
        m = re.search(r"^totals:\s+(\d+)", f.read(), re.M)
    return int(m.group(1))


def annotate(path, per, inclusive, limit):
    """(Ir per unit, function) of the top functions of a dump."""
    res = subprocess.run(["callgrind_annotate", "--threshold=100",
                          "--inclusive=" + ("yes" if inclusive else "no"), path],
                         capture_output=True, text=True)
    rows = []
    for line in res.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if not m or ":" not in m.group(2):
            continue
        rows.append((int(m.group(1).replace(",", "")) / per, m.group(2).strip()))
        if len(rows) >= limit:
            break
    return rows


def start_daemon(fx):
    log = open(os.path.join(fx.tmp, "logs", "daemon"), "a")
    argv = valgrind(fx.daemon_path, "daemon") + [
        "--config", fx.config_path, "--executor", fx.executor_path, "--exit-idle-time", "0"]
    fx.daemon_proc = subprocess.Popen(argv, stdout=log, stderr=log, env=fx.client_env())
    wait_for_name(fx, "org.left4me.Overlay1", fx.daemon_proc, "daemon")



def stop(fx, attr, name):
    proc = getattr(fx, attr)
    proc.terminate()
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    fx.wait_for_name_gone(name, timeout=60)


def run(bench, pairs):
    fx = bench.fx
    if not os.path.isdir(os.path.join(fx.instances, "lat")):
        fx.make_instance("lat")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    stop(fx, "daemon_proc", "org.left4me.Overlay1")
    try:
        start_daemon(fx)
        daemon = fx.daemon_proc.pid
        warm = 20
        bench.run("member", [bench.client, "pairs", "lat", str(warm)])
        bench.run("root", [bench.client, "pairs", "lat", str(warm)])
        dump(daemon, "warm-up")
        # Each client run adds one warm-up pair of its own.
        bench.run("member", [bench.client, "pairs", "lat", str(pairs)])
        member = dump(daemon, "member-pairs")
        bench.run("root", [bench.client, "pairs", "lat", str(pairs)])
        root = dump(daemon, "root-pairs")
        n = pairs + 1
        out = {
            "pairs": pairs,
            "daemon_ir_per_member_pair": total_ir(member) / n,
            "daemon_ir_per_root_pair": total_ir(root) / n,
            "member_self": annotate(member, n, False, 40),
            "member_inclusive": annotate(member, n, True, 80),
            "root_self": annotate(root, n, False, 25),
            "dumps": {"member": member, "root": root},
        }
    finally:
        stop(fx, "daemon_proc", "org.left4me.Overlay1")
        fx.start_daemon()
    bench.results["callgrind"] = out
    print("---- callgrind: instructions (Ir) ----")
    for key in ("daemon_ir_per_member_pair", "daemon_ir_per_root_pair"):
        print("  %-46s %12.0f" % (key, out[key]))
    for title, key in (("daemon, member pair, self", "member_self"),
                       ("daemon, member pair, inclusive", "member_inclusive"),
                       ("daemon, root pair, self", "root_self")):
        print("---- %s (Ir per unit) ----" % title)
        for ir, fn in out[key]:
            print("  %10.0f  %s" % (ir, fn[:150]))
    print("dumps: %s" % OUT)
    return out
