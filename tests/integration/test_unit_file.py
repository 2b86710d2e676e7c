# SPDX-License-Identifier: MIT
"""The systemd unit, config/walcastd.service.in, and what it promises.

1. template: both variants the build can write (Type=notify-reload, and
   Type=notify with ExecReload= for systemd before 253) carry the
   settings walcastd relies on: service type, user, state directory,
   restart policy (never on exit 69 or 78), watchdog, stop timeout above
   walcastd's drain (shutdown_timeout, 10 s by default), and the hardening.
2. installed: `cmake --install` into a temporary prefix writes the variant
   the build chose, with ExecStart= naming the installed walcastd; the
   sysusers.d file creates the walcast user (`systemd-sysusers --root`).
3. verify: `systemd-analyze verify` accepts the installed unit without a
   warning (its man: links resolve to the installed man pages).  Skipped,
   with the reason printed, where the tool is missing or does not work in
   this container (it must pass a good unit and refuse a broken one).
4. syscalls: walcastd streaming from a real PostgreSQL, with a file sink,
   the jsonl plugin (dlopen) and a Kafka sink on the mock cluster, then
   reloading and stopping, under strace: every system call is one the
   unit's SystemCallFilter= allows, every socket is of a family
   RestrictAddressFamilies= allows, and no memory is ever mapped writable
   and executable or made executable later (MemoryDenyWriteExecute=).
   Skipped where strace cannot trace.
"""

import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import installtree  # noqa: E402
from harness import check  # noqa: E402

TEMPLATE = os.path.join(installtree.SRC, "config", "walcastd.service.in")
SYSUSERS = os.path.join(installtree.SRC, "config", "walcast.sysusers")
CONFIG = "/etc/walcast/walcast.yaml"

# settings whose value is fixed; booleans compared as systemd reads them
FIXED = {
    "User": "walcast",
    "Group": "walcast",
    "StateDirectory": "walcast",
    "Restart": "on-failure",
    "WatchdogSec": "30s",
    "ProtectSystem": "strict",
    "SystemCallArchitectures": "native",
}
TRUE = ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
        "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
        "ProtectControlGroups", "RestrictNamespaces", "LockPersonality",
        "MemoryDenyWriteExecute", "RestrictRealtime")
FAMILIES = {"AF_UNIX", "AF_INET", "AF_INET6"}
DRAIN_S = 10    # walcastd's default shutdown_timeout after SIGTERM


# --------------------------------------------------------------------------
# reading unit files

def parse_unit(text, name):
    """{section: [(key, value), ...]} in file order; a line ending in a
    backslash continues on the next, as systemd reads it."""
    unit, section, pending = {}, None, ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("["):
            check(line.endswith("]"), "%s:%d: bad section line" % (name, n))
            section = line[1:-1]
            unit.setdefault(section, [])
            continue
        check(section is not None and "=" in line,
              "%s:%d: not a key=value line inside a section: %r"
              % (name, n, line))
        k, v = line.split("=", 1)
        unit[section].append((k.strip(), v.strip()))
    return unit


def values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit, section, key, name):
    """The value systemd uses for a single-valued key: the last one."""
    vs = values(unit, section, key)
    check(vs, "%s: [%s] has no %s=" % (name, section, key))
    return vs[-1]


def is_true(v):
    return v.lower() in ("1", "yes", "true", "on")


def seconds(v):
    """A systemd time span without spaces: 10s, 1min 30s is not used."""
    m = re.fullmatch(r"(\d+)(ms|s|sec|min|m)?", v)
    check(m, "cannot read time span %r" % v)
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n / 1000 if unit == "ms" else n * 60 if unit in ("min", "m") else n


def render(notify_reload, sbindir):
    """The template as configure_file(@ONLY) in cmake/install.cmake fills
    it in."""
    with open(TEMPLATE) as f:
        text = f.read()
    if notify_reload:
        typ = "Type=notify-reload"
    else:
        typ = "Type=notify\nExecReload=/bin/kill -HUP $MAINPID"
    text = text.replace("@WALCAST_UNIT_TYPE@", typ)
    text = text.replace("@WALCAST_UNIT_SBINDIR@", sbindir)
    left = re.findall(r"@[A-Za-z_]+@", text)
    check(not left, "placeholders the install does not fill in: %s" % left)
    return text


def check_unit(unit, name, notify_reload, sbindir):
    svc = "Service"
    check(unit.get("Unit") is not None and unit.get(svc) is not None and
          unit.get("Install") is not None,
          "%s: sections [Unit], [Service], [Install] expected, got %s"
          % (name, list(unit)))

    typ = value(unit, svc, "Type", name)
    reload_cmds = values(unit, svc, "ExecReload")
    if notify_reload:
        check(typ == "notify-reload", "%s: Type=%s, expected notify-reload"
              % (name, typ))
        # with notify-reload systemd sends the SIGHUP itself; an
        # ExecReload= would run as well and reload twice
        check(not reload_cmds, "%s: ExecReload= next to Type=notify-reload"
              % name)
    else:
        check(typ == "notify", "%s: Type=%s, expected notify" % (name, typ))
        check(reload_cmds == ["/bin/kill -HUP $MAINPID"],
              "%s: ExecReload=%s, expected the SIGHUP" % (name, reload_cmds))

    exe = value(unit, svc, "ExecStart", name)
    want = "%s/walcastd -c %s" % (sbindir, CONFIG)
    check(exe == want, "%s: ExecStart=%s, expected %s" % (name, exe, want))
    check(len(values(unit, svc, "ExecStart")) == 1,
          "%s: more than one ExecStart=" % name)

    for k, v in FIXED.items():
        got = value(unit, svc, k, name)
        check(got == v, "%s: %s=%s, expected %s" % (name, k, got, v))
    for k in TRUE:
        got = value(unit, svc, k, name)
        check(is_true(got), "%s: %s=%s, expected yes" % (name, k, got))

    prevent = set(" ".join(values(unit, svc, "RestartPreventExitStatus"))
                  .split())
    check({"69", "78"} <= prevent,
          "%s: RestartPreventExitStatus=%s must hold 69 and 78"
          % (name, sorted(prevent)))
    stop = seconds(value(unit, svc, "TimeoutStopSec", name))
    check(DRAIN_S < stop <= 30,
          "%s: TimeoutStopSec=%ss: expected a little above the %d s drain"
          % (name, stop, DRAIN_S))
    fam = set(value(unit, svc, "RestrictAddressFamilies", name).split())
    check(fam == FAMILIES, "%s: RestrictAddressFamilies=%s, expected %s"
          % (name, sorted(fam), sorted(FAMILIES)))
    # an empty assignment empties the bounding set: no capabilities at all
    check(value(unit, svc, "CapabilityBoundingSet", name) == "",
          "%s: CapabilityBoundingSet= must be empty" % name)
    filters = values(unit, svc, "SystemCallFilter")
    check(filters and filters[0] == "@system-service",
          "%s: the first SystemCallFilter= must allow @system-service, "
          "got %s" % (name, filters))
    check(value(unit, "Install", "WantedBy", name) == "multi-user.target",
          "%s: WantedBy= should be multi-user.target" % name)


# --------------------------------------------------------------------------
# 1. the template

def case_template():
    for notify_reload in (True, False):
        text = render(notify_reload, "/usr/sbin")
        name = "walcastd.service (%s)" % ("notify-reload" if notify_reload
                                          else "notify")
        check_unit(parse_unit(text, name), name, notify_reload, "/usr/sbin")


# --------------------------------------------------------------------------
# 2. installed

class Installed:
    def __init__(self):
        self.build = installtree.build_dir()
        self.cache = installtree.cache(self.build)
        bad = installtree.absolute_dirs(self.cache)
        if bad:
            self.skip = ("the build has absolute install directories (%s): "
                         "an install into a temporary prefix would write "
                         "outside it" % ", ".join(bad))
            return
        self.skip = None
        self.tmp = h.make_tmpdir()
        # walcastd loads the installed jsonl plugin only from a path that
        # nobody but root or its own user can change: not under /tmp
        self.prefix = os.path.join(h.trusted_tmpdir(), "prefix")
        installtree.install(self.build, self.prefix)
        c = self.cache
        self.notify_reload = c.get("WALCAST_SYSTEMD_NOTIFY_RELOAD") in (
            "ON", "TRUE", "1", "YES")
        self.sbindir = installtree.in_prefix(c, "CMAKE_INSTALL_SBINDIR",
                                             self.prefix, "sbin")
        self.unit_path = os.path.join(
            installtree.in_prefix(c, "WALCAST_SYSTEMD_UNITDIR", self.prefix,
                                  "lib/systemd/system"), "walcastd.service")
        self.sysusers_path = os.path.join(
            installtree.in_prefix(c, "WALCAST_SYSUSERSDIR", self.prefix,
                                  "lib/sysusers.d"), "walcast.conf")
        datarootdir = c.get("CMAKE_INSTALL_DATAROOTDIR") or "share"
        self.mandir = installtree.in_prefix(c, "CMAKE_INSTALL_MANDIR",
                                            self.prefix, datarootdir + "/man")
        self.man = c.get("WALCAST_MAN", "ON") in ("ON", "TRUE", "1", "YES")


def case_installed(inst):
    check(os.path.isfile(inst.unit_path), "no unit installed at %s"
          % inst.unit_path)
    with open(inst.unit_path) as f:
        text = f.read()
    unit = parse_unit(text, inst.unit_path)
    check_unit(unit, inst.unit_path, inst.notify_reload, inst.sbindir)
    exe = value(unit, "Service", "ExecStart", inst.unit_path).split()[0]
    check(os.access(exe, os.X_OK), "ExecStart names %s, which is not an "
          "installed executable" % exe)

    check(os.path.isfile(inst.sysusers_path), "no sysusers.d file at %s"
          % inst.sysusers_path)
    sysusers = shutil.which("systemd-sysusers")
    if not sysusers:
        h.log("systemd-sysusers not found: the user it creates is not "
              "checked")
        return
    root = os.path.join(inst.tmp, "sysroot")
    os.makedirs(os.path.join(root, "etc"))
    r = h.run([sysusers, "--root=" + root, inst.sysusers_path])
    check(r.returncode == 0, "systemd-sysusers failed (exit %d): %s"
          % (r.returncode, r.stderr))
    with open(os.path.join(root, "etc", "passwd")) as f:
        users = {line.split(":")[0]: line.strip().split(":")
                 for line in f if line.strip()}
    user = value(unit, "Service", "User", inst.unit_path)
    check(user in users, "systemd-sysusers did not create user %r: %s"
          % (user, list(users)))
    home, shell = users[user][5], users[user][6]
    check(home == "/var/lib/walcast", "home of %s is %s" % (user, home))
    check(shell.endswith("nologin"), "%s can log in: shell %s"
          % (user, shell))


# --------------------------------------------------------------------------
# 3. systemd-analyze verify

def analyze_verify(path, extra_env=None, man=True):
    env = dict(os.environ)
    env.update(extra_env or {})
    argv = ["systemd-analyze", "verify"]
    if not man:
        argv.append("--man=no")
    argv.append(path)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=env, timeout=120)
    return r.returncode, r.stdout.strip()


def verify_usable(tmp):
    """None when systemd-analyze verify works here, else why not."""
    if not shutil.which("systemd-analyze"):
        return "systemd-analyze is not installed"
    good = os.path.join(tmp, "wc-probe-good.service")
    bad = os.path.join(tmp, "wc-probe-bad.service")
    true = shutil.which("true") or "/bin/true"
    with open(good, "w") as f:
        f.write("[Service]\nType=notify\nExecStart=%s\n" % true)
    with open(bad, "w") as f:
        f.write("[Service]\nType=notify\nExecStart=%s/no-such-binary\n" % tmp)
    rc, out = analyze_verify(good, man=False)
    if rc != 0 or out:
        return ("systemd-analyze verify fails on a trivial unit here "
                "(exit %d): %s" % (rc, out))
    rc, out = analyze_verify(bad, man=False)
    if rc == 0:
        return ("systemd-analyze verify accepts a unit whose ExecStart= "
                "does not exist: it checks nothing here")
    return None


def systemd_version():
    r = h.run(["systemd-analyze", "--version"])
    m = re.search(r"systemd (\d+)", r.stdout)
    return int(m.group(1)) if m else None


def case_verify(inst):
    why = verify_usable(inst.tmp)
    if why:
        h.log("SKIP systemd-analyze verify:", why)
        return
    # man: links in Documentation= are checked with man(1): point it at
    # the installed pages
    env = {"MANPATH": inst.mandir} if inst.man else {}
    rc, out = analyze_verify(inst.unit_path, env, man=inst.man)
    version = systemd_version()
    hint = ""
    if "notify-reload" in out and version and version < 253:
        hint = ("\nsystemd %d predates Type=notify-reload: configure with "
                "-DWALCAST_SYSTEMD_NOTIFY_RELOAD=OFF" % version)
    check(rc == 0 and not out,
          "systemd-analyze verify %s: exit %d, output:\n%s%s"
          % (inst.unit_path, rc, out, hint))
    h.log("systemd-analyze verify (systemd %s): clean" % version)


# --------------------------------------------------------------------------
# 4. system calls, address families and memory under strace

def filter_groups():
    """{"@group": [members]} from systemd-analyze syscall-filter."""
    r = h.run(["systemd-analyze", "syscall-filter"])
    check(r.returncode == 0, "systemd-analyze syscall-filter failed: %s"
          % r.stderr)
    groups, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.strip())
    return groups


def expand(groups, names):
    out = set()
    for n in names:
        if n.startswith("@"):
            check(n in groups, "unknown system call group %s" % n)
            out |= expand(groups, groups[n])
        else:
            out.add(n)
    return out


def allowed_syscalls(unit, name):
    """The set the unit's SystemCallFilter= lines allow: an allow list
    first, then ~ entries taking calls away again, as systemd reads them;
    plus the calls systemd.exec(5) always allows."""
    groups = filter_groups()
    allowed = set()
    for i, v in enumerate(values(unit, "Service", "SystemCallFilter")):
        deny = v.startswith("~")
        names = v.lstrip("~").split()
        check(i > 0 or not deny, "%s: the first SystemCallFilter= must be "
              "an allow list" % name)
        if deny:
            allowed -= expand(groups, names)
        else:
            allowed |= expand(groups, names)
    return allowed | {"execve", "exit", "exit_group", "getrlimit",
                      "rt_sigreturn", "sigreturn"}


def strace_usable(tmp):
    strace = shutil.which("strace")
    if not strace:
        return None, "strace is not installed"
    r = h.run([strace, "-f", "-qq", "-o", os.devnull, "true"])
    if r.returncode != 0:
        return None, "strace cannot trace here: %s" % r.stderr.strip()
    return strace, None


def child_pid(pid, timeout=10.0):
    """The walcastd strace started: its child running walcastd (strace
    also forks short-lived children of its own at start, to probe what
    ptrace can do here)."""
    exe = os.path.realpath(h.binary("walcastd"))

    def find():
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids = f.read().split()
                for kid in kids:
                    try:
                        if os.readlink("/proc/%s/exe" % kid) == exe:
                            return int(kid)
                    except OSError:
                        pass
        except OSError:
            return None
        return None
    return h.wait_until(find, timeout=timeout, what="the traced walcastd")


def kafka_mock(build, tmp):
    """Starts librdkafka's mock cluster when it is built; returns (proc,
    bootstrap servers) or (None, None)."""
    exe = os.environ.get("WC_KAFKA_MOCK") or os.path.join(
        build, "tests", "tools", "kafka_mock")
    if not os.access(exe, os.X_OK):
        return None, None
    p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    bootstrap = p.stdout.readline().strip()
    check(bootstrap, "kafka_mock printed no bootstrap servers")
    return p, bootstrap


PROT_EXEC_MPROTECT = re.compile(
    r"\b(p?key_)?mprotect\([^)]*PROT_EXEC")
WX_MMAP = re.compile(
    r"\bmmap2?\([^,]*, \d+, ([A-Z_|]*)")
SOCKET = re.compile(r"\bsocket\((AF_[A-Z0-9]+|\d+)")
CALL = re.compile(r"^\d+\s+([a-z_0-9]+)\(")


def case_syscalls(inst):
    strace, why = strace_usable(inst.tmp)
    if why:
        h.log("SKIP system call check:", why)
        return
    if not shutil.which("systemd-analyze"):
        h.log("SKIP system call check: no systemd-analyze to expand "
              "SystemCallFilter= groups")
        return
    with open(inst.unit_path) as f:
        unit = parse_unit(f.read(), inst.unit_path)
    allowed = allowed_syscalls(unit, inst.unit_path)
    families = set(value(unit, "Service", "RestrictAddressFamilies",
                         inst.unit_path).split())

    tmp = inst.tmp
    cluster = h.Cluster(tmpdir=tmp)
    cluster.sql('CREATE SCHEMA "town6-sys"; '
                'CREATE TABLE "town6-sys".t (id int PRIMARY KEY, v text)')
    out = os.path.join(tmp, "sys-out.jsonl")
    sinks = ["sinks:", "  - file:", "      path: " + h.yq(out)]
    jsonl = os.environ.get("WC_JSONL_SO")
    if jsonl:
        # the plugin is loaded from an installed copy: dlopen under test
        jsonl = os.path.join(installtree.in_prefix(
            inst.cache, "CMAKE_INSTALL_LIBDIR", inst.prefix, "lib"),
            "walcast", "plugins", "jsonl.so")
        check(os.path.isfile(jsonl), "no installed jsonl plugin at %s"
              % jsonl)
        sinks += ["  - plugin:", "      path: " + h.yq(jsonl),
                  "      config: { file: %s }"
                  % h.yq(os.path.join(tmp, "audit.jsonl"))]
    mock, bootstrap = kafka_mock(inst.build, tmp)
    if mock:
        sinks += ["  - kafka:", "      properties:",
                  "        bootstrap.servers: " + h.yq(bootstrap)]
    else:
        h.log("no kafka_mock built: the Kafka sink is not traced")
    cfg = os.path.join(tmp, "sys.yaml")
    h.write_config(cfg, cluster.dsn(), "wc_sys", extra="\n".join(sinks)
                   + "\n")
    trace = os.path.join(tmp, "strace.txt")
    # LeakSanitizer, in sanitized builds, cannot work under ptrace
    asan = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
        "detect_leaks=0"
    try:
        p = h.Proc([strace, "-f", "-qq", "-o", trace, h.binary("walcastd"),
                    "-c", cfg], tmp, name="walcastd-strace")
    finally:
        os.environ["ASAN_OPTIONS"] = asan
        if not asan:
            del os.environ["ASAN_OPTIONS"]
    pid = None
    try:
        pid = child_pid(p.pid)
        p.wait_ready(timeout=60)
        cluster.sql('INSERT INTO "town6-sys".t SELECT g, \'v\' || g '
                    'FROM generate_series(1, 50) g; '
                    'UPDATE "town6-sys".t SET v = \'w\' WHERE id <= 10; '
                    'DELETE FROM "town6-sys".t WHERE id > 40; '
                    'TRUNCATE "town6-sys".t')
        h.wait_until(lambda: h.count_lines(out) >= 71, timeout=60,
                     what="71 changes in the file sink")
        os.kill(pid, signal.SIGHUP)
        h.wait_until(lambda: "reloaded" in p.stderr(), timeout=30,
                     what="walcastd to log the reload")
        cluster.sql('INSERT INTO "town6-sys".t VALUES (1000, \'after\')')
        h.wait_until(lambda: h.count_lines(out) >= 72, timeout=60,
                     what="the change after the reload")
        os.kill(pid, signal.SIGTERM)
        rc = p.wait(timeout=60)
        check(rc == 0, "walcastd under strace exited %s\n%s"
              % (rc, p.describe()))
        pid = None
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if mock:
            mock.stdin.close()
            mock.wait(timeout=30)

    seen, bad_mem, bad_fam = set(), [], set()
    with open(trace, errors="replace") as f:
        for line in f:
            m = CALL.match(line)
            if m:
                seen.add(m.group(1))
            if PROT_EXEC_MPROTECT.search(line):
                bad_mem.append(line.strip())
            m = WX_MMAP.search(line)
            if m and "PROT_WRITE" in m.group(1) and "PROT_EXEC" in m.group(1):
                bad_mem.append(line.strip())
            m = SOCKET.search(line)
            if m and m.group(1) not in families:
                bad_fam.add(m.group(1))
    check(len(seen) > 20, "strace recorded almost nothing (%s): %s"
          % (sorted(seen), trace))
    denied = sorted(seen - allowed)
    check(not denied, "walcastd made system calls that the unit's "
          "SystemCallFilter= refuses: %s (trace: %s)" % (denied, trace))
    check(not bad_mem, "memory mapped writable+executable or made "
          "executable, which MemoryDenyWriteExecute= refuses:\n%s"
          % "\n".join(bad_mem[:10]))
    # glibc's getaddrinfo(AI_ADDRCONFIG) asks netlink which address
    # families exist and, refused, assumes both: harmless
    bad_fam.discard("AF_NETLINK")
    check(not bad_fam, "sockets of families RestrictAddressFamilies= "
          "refuses: %s" % sorted(bad_fam))
    h.log("traced %d distinct system calls%s; all allowed by the unit"
          % (len(seen), ", with a Kafka sink" if mock else ""))


def main():
    cases = h.Cases()
    cases.run("template", case_template)
    inst = Installed()
    if inst.skip:
        h.log("SKIP installed, verify, syscalls:", inst.skip)
        return cases.finish()
    cases.run("installed", case_installed, inst)
    cases.run("verify", case_verify, inst)
    cases.run("syscalls", case_syscalls, inst)
    return cases.finish()


if __name__ == "__main__":
    h.main(main)
