#!/usr/bin/python3
"""Checks of the Debian package that packaging/build-deb.sh makes
(ctest -L packaging; docs/packaging.md):

  check_deb.py --source-dir SRC --version X.Y.Z [--debs DIR]

- lintian (the one of the release this runs on: Debian 12's 2.116 or
  Debian 13's 2.122; the package is checked where it was built) reports
  no error and no warning with --pedantic; the info tags it reports are
  among the ones docs/packaging.md justifies (KNOWN_INFO);
- the maintainer scripts are debhelper's: deb-systemd-helper /
  deb-systemd-invoke behind a DPKG_ROOT guard, systemd-sysusers for the
  group; nothing touches polkit or reloads dbus by hand;
- control: a real Maintainer address, Depends on polkitd, admitting
  dbus-broker and systemd-standalone-sysusers, the version of
  packaging/debian/changelog equal to the project's;
- binaries hardened as dpkg-buildflags asks (BIND_NOW, relro, PIE,
  fortify), with no .comment section;
- the files: DEP-5 copyright, changelog, sysusers.d, bash completion,
  left4me-overlay.conf(5), the unit in the folder systemd.pc names on this
  release (/lib/systemd/system on Debian 12, /usr/lib/systemd/system on 13).
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Info tags of Debian 12's and 13's lintian that stay, each justified in
# docs/packaging.md ("lintian"). (Debian 13's no longer has the first.)
KNOWN_INFO = {
    "package-supports-alternative-init-but-no-init.d-script",
    "spare-manual-page",
    "hardening-no-fortify-functions",
    "systemd-service-file-missing-install-key",
}

# Overridden in packaging/debian/left4me-overlay.lintian-overrides, each
# with its reason there and in docs/packaging.md.
KNOWN_OVERRIDES = {
    "dbus-policy-without-send-destination",
}

FAILURES = []


def check(cond, message):
    if not cond:
        FAILURES.append(message)
        print("FAIL: " + message, flush=True)
    return cond


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kw)


def check_lintian(debs):
    version = run(["lintian", "--version"]).stdout.strip()
    print("%s on %s" % (version, " ".join(os.path.basename(d) for d in debs)), flush=True)
    proc = run(["lintian", "--pedantic", "--info", "--display-info", "--show-overrides",
                "--tag-display-limit", "0"] + debs)
    print(proc.stdout, end="", flush=True)
    tags = re.findall(r"^([EWIXOP]): \S+: (\S+)", proc.stdout, re.M)
    errors = [t for kind, t in tags if kind == "E"]
    warnings = [t for kind, t in tags if kind == "W"]
    infos = {t for kind, t in tags if kind in ("I", "P")}
    overridden = {t for kind, t in tags if kind == "O"}
    print("lintian: %d errors, %d warnings, %d info tags (%s)"
          % (len(errors), len(warnings), len(infos), " ".join(sorted(infos)) or "none"))
    check(not errors, "lintian errors: %s" % errors)
    check(not warnings, "lintian warnings: %s" % warnings)
    check(infos <= KNOWN_INFO, "lintian info tags not justified in docs/packaging.md: %s"
          % sorted(infos - KNOWN_INFO))
    check(overridden <= KNOWN_OVERRIDES, "lintian overrides not justified in docs/packaging.md: %s"
          % sorted(overridden - KNOWN_OVERRIDES))


def check_scripts(control_dir):
    scripts = {}
    for name in ("preinst", "postinst", "prerm", "postrm"):
        path = os.path.join(control_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                scripts[name] = f.read()
    check("postinst" in scripts and "prerm" in scripts and "postrm" in scripts,
          "missing maintainer scripts: %s" % sorted(scripts))
    for name, text in scripts.items():
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        check("polkit" not in code, "%s touches polkit:\n%s" % (name, text))
        check(not re.search(r"reload\s+dbus|dbus\S*\s+reload|ReloadConfig", code),
              "%s reloads dbus by hand:\n%s" % (name, text))
        for line in code.splitlines():
            if re.search(r"\bsystemctl\b", line):
                check("daemon-reload" in line, "%s: systemctl other than daemon-reload: %r"
                      % (name, line.strip()))
        # What acts on the running system (starting or stopping units,
        # making the group by hand) happens only with no DPKG_ROOT: inside an
        # `if` whose condition tests it. (debhelper's own daemon-reload in
        # postrm has no such guard; systemd-sysusers takes --root itself.)
        conditions = []
        for line in code.splitlines():
            words = line.strip()
            if re.match(r"(if|elif) ", words):
                if words.startswith("elif"):
                    conditions.pop()
                conditions.append(words)
            elif words == "fi":
                conditions.pop()
            elif re.search(r"\b(deb-systemd-invoke|addgroup|groupadd)\b", words):
                check(any("DPKG_ROOT" in c for c in conditions),
                      "%s: not guarded by DPKG_ROOT: %r" % (name, words))
    post = scripts.get("postinst", "")
    check(re.search(r"systemd-sysusers \$\{DPKG_ROOT:\+--root=\"\$DPKG_ROOT\"\} "
                    r"left4me-overlay\.conf", post), "postinst runs no systemd-sysusers")
    check("try-restart 'left4me-overlayd.service'" in post,
          "postinst does not try-restart the daemon on upgrade")
    check("deb-systemd-invoke start" not in post, "postinst starts the daemon")
    check("deb-systemd-invoke stop 'left4me-overlayd.service'" in scripts.get("prerm", ""),
          "prerm does not stop the daemon on removal")
    check("deb-systemd-helper purge 'left4me-overlayd.service'" in scripts.get("postrm", "")
          or "daemon-reload" in scripts.get("postrm", ""), "postrm does not reload systemd")


def check_control(deb, version):
    fields = {}
    for key in ("Maintainer", "Depends", "Version"):
        fields[key] = run(["dpkg-deb", "-f", deb, key]).stdout.strip()
    m = fields["Maintainer"]
    check(re.fullmatch(r"[^<>]+ <[^@<>\s]+@[^@<>\s]+\.[a-z]+>", m) and "localhost" not in m,
          "Maintainer is not a project address: %r" % m)
    depends = [d.strip() for d in fields["Depends"].split(",")]
    check("default-dbus-system-bus | dbus-system-bus" in depends,
          "Depends does not admit dbus-broker: %r" % fields["Depends"])
    # Unversioned: every release with a package of that name (121 and
    # later; Debian 12 has 122, Debian 13 126) runs our JavaScript rules.
    check("polkitd" in depends, "Depends has no polkitd: %r" % fields["Depends"])
    check("systemd | systemd-standalone-sysusers | systemd-sysusers" in depends,
          "Depends does not admit systemd-standalone-sysusers: %r" % fields["Depends"])
    check(re.fullmatch(re.escape(version) + r"([-~+].*)?", fields["Version"]),
          "package version %r does not match the project's %r" % (fields["Version"], version))


def elf_files(root):
    for path in glob.glob(root + "/usr/bin/*") + glob.glob(root + "/usr/libexec/left4me/*"):
        with open(path, "rb") as f:
            if f.read(4) == b"\x7fELF":
                yield path


def check_binaries(root):
    found = 0
    for path in elf_files(root):
        found += 1
        name = os.path.relpath(path, root)
        sections = run(["readelf", "-W", "-S", path]).stdout
        check(".comment" not in sections, "%s has a .comment section" % name)
        dynamic = run(["readelf", "-W", "-d", path]).stdout
        check(re.search(r"\(FLAGS\).*BIND_NOW", dynamic) or re.search(r"FLAGS_1.*NOW", dynamic),
              "%s is not linked with -z now (BIND_NOW)" % name)
        check("PIE" in re.search(r"FLAGS_1.*", dynamic).group(0) if "FLAGS_1" in dynamic
              else False, "%s is not PIE" % name)
        headers = run(["readelf", "-W", "-l", path]).stdout
        check("GNU_RELRO" in headers, "%s has no RELRO" % name)
        symbols = run(["readelf", "-W", "--dyn-syms", path]).stdout
        if not os.path.basename(path) == "left4me-overlay":
            # The helper calls no fortifiable function (lintian's info tag).
            check("_chk@" in symbols, "%s uses no fortified function" % name)
    check(found == 3, "expected 3 programs, found %d" % found)


def unit_dir():
    """Where systemd on this release wants units (systemd.pc: systemd on
    Debian 12, systemd-dev on 13), without the leading /."""
    proc = run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"])
    check(proc.returncode == 0 and proc.stdout.strip(),
          "pkg-config knows no systemdsystemunitdir (systemd.pc): %s" % proc.stdout)
    return (proc.stdout.strip() or "/lib/systemd/system").lstrip("/")


def check_files(root):
    for rel in ("usr/share/doc/left4me-overlay/copyright",
                "usr/share/doc/left4me-overlay/changelog.gz",
                "usr/lib/sysusers.d/left4me-overlay.conf",
                "usr/share/bash-completion/completions/left4me-overlayctl",
                "usr/share/man/man5/left4me-overlay.conf.5.gz",
                unit_dir() + "/left4me-overlayd.service"):
        check(os.path.exists(os.path.join(root, rel)), "the package has no /" + rel)
    copyright_path = os.path.join(root, "usr/share/doc/left4me-overlay/copyright")
    if os.path.exists(copyright_path):
        with open(copyright_path) as f:
            text = f.read()
        check(text.startswith("Format: https://www.debian.org/doc/packaging-manuals/"
                              "copyright-format/1.0/"), "copyright is not DEP-5")
        check("License: Expat" in text, "copyright does not name the MIT (Expat) license")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--version", required=True, help="the project's version (CMake)")
    parser.add_argument("--debs", help="check the packages in this folder instead of building")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="left4me-overlay-check-deb.")
    try:
        debs_dir = args.debs
        if not debs_dir:
            debs_dir = os.path.join(work, "out")
            proc = run([os.path.join(args.source_dir, "packaging", "build-deb.sh"), debs_dir])
            if proc.returncode != 0:
                print(proc.stdout)
                sys.exit("build-deb.sh failed")
        debs = sorted(glob.glob(os.path.join(debs_dir, "*.deb")))
        main_debs = [d for d in debs if os.path.basename(d).startswith("left4me-overlay_")]
        if not check(len(main_debs) == 1, "expected one left4me-overlay_*.deb: %s" % debs):
            sys.exit(1)
        deb = main_debs[0]
        check_lintian(debs)
        control = os.path.join(work, "control")
        run(["dpkg-deb", "-e", deb, control], check=True)
        check_scripts(control)
        check_control(deb, args.version)
        root = os.path.join(work, "root")
        run(["dpkg-deb", "-x", deb, root], check=True)
        check_binaries(root)
        check_files(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        sys.exit(1)
    print("all package checks passed")


if __name__ == "__main__":
    main()
