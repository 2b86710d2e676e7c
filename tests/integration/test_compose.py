# SPDX-License-Identifier: MIT
"""docker-compose.yml and the files it builds from, without Docker.

No Docker engine runs on these machines, so the stack is checked the way
far as it can be without one:

1. services: postgres, kafka, walcastd and workload exist; every build
   context and Dockerfile, and every file mounted from the repository,
   exists; images are pinned (no :latest); ports bind to localhost;
   walcastd waits for healthy postgres and kafka, and they have health
   checks (pg_isready; Kafka's broker API); the workload waits for
   postgres and starts after walcastd.
2. postgres: the image is the official one plus wal2json of the same major
   version, with wal_level = logical, replication slots and WAL senders in
   a snippet it includes, and no setting upstream PostgreSQL would refuse.
3. kafka: KRaft, one node that is broker and controller; every listener
   has a security protocol; the address walcastd's config names is an
   advertised listener of the kafka service, and the published port is
   the one advertised for the host.
4. walcastd config: docker/walcast.yaml, mounted as
   /etc/walcast/walcast.yaml, passes `walcastd --check`; its dsn names the
   postgres service, database and role the postgres image creates, its
   Kafka sink the kafka service, and a file sink writes to stdout.
5. Dockerfile: a build stage on Debian 12 installing .ci/packages minus
   test-only packages (each of which is still in .ci/packages), building
   and installing with prefix /usr; a runtime stage on Debian 12 with no
   -dev package, a non-root user, and CMD walcastd -c
   /etc/walcast/walcast.yaml.  Every shared library the built walcastd
   and walcast link directly comes from a package the runtime stage
   installs (dpkg -S, where dpkg exists).
6. workload: docker/workload.sh, run against a real PostgreSQL with
   walcastd running docker/walcast.yaml (pointed at it, Kafka sink on the
   mock cluster when built), writes changes to schema "town6-demo" that
   pass walcast's filter and arrive on walcastd's stdout.

Needs PyYAML (Debian: python3-yaml, listed in .ci/packages).
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import installtree  # noqa: E402
from harness import check, fail  # noqa: E402

try:
    import yaml
except ImportError:
    yaml = None

SRC = installtree.SRC
COMPOSE = os.path.join(SRC, "docker-compose.yml")
SERVICES = ("postgres", "kafka", "walcastd", "workload")
CONFIG_IN_CONTAINER = "/etc/walcast/walcast.yaml"
# what the runtime stage must install, by purpose
RUNTIME_PACKAGES = {"libpq5", "libyaml-0-2", "librdkafka1", "libmicrohttpd12",
                    "libsystemd0", "libmimalloc2.0"}
# in every Debian image: the C library and the compiler's runtime
BASE_PACKAGES = {"libc6", "libgcc-s1"}


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def repo_path(rel, base=SRC):
    return os.path.normpath(os.path.join(base, rel))


def env_of(svc):
    """A service's environment as a dict, from either compose syntax."""
    e = svc.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    return {k: "" if v is None else str(v) for k, v in e.items()}


def build_of(svc, name):
    b = svc.get("build")
    check(b is not None, "service %s has no build:" % name)
    if isinstance(b, str):
        b = {"context": b}
    ctx = repo_path(b.get("context", "."))
    dockerfile = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
    check(os.path.isdir(ctx), "%s: build context %s is missing" % (name, ctx))
    check(os.path.isfile(dockerfile), "%s: %s is missing" % (name, dockerfile))
    return ctx, dockerfile


def mounts(svc):
    """[(host path, container path, options)] of bind mounts."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            out.append((v.get("source"), v.get("target"),
                        "ro" if v.get("read_only") else ""))
            continue
        parts = v.split(":")
        out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return [(repo_path(s), t, o) for s, t, o in out
            if s and s.startswith((".", "/"))]


def healthcheck_cmd(svc):
    t = (svc.get("healthcheck") or {}).get("test")
    if isinstance(t, list):
        return " ".join(str(x) for x in t[1:])
    return t or ""


# --------------------------------------------------------------------------
# Dockerfiles

def dockerfile_stages(path):
    """[{"from": image, "name": alias, "lines": [instruction, ...]}]; a
    backslash-continued instruction is one line."""
    stages, cur, pending = [], None, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or
                                line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            m = re.match(r"\s*FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", line, re.I)
            if m:
                cur = {"from": m.group(1), "name": m.group(2), "lines": []}
                stages.append(cur)
                continue
            check(cur is not None, "%s: instruction before FROM: %s"
                  % (path, line))
            cur["lines"].append(" ".join(line.split()))
    return stages


def apt_installs(lines):
    """Package names given to apt-get install in RUN lines (words that
    are not options or shell syntax)."""
    pkgs = set()
    for line in lines:
        if not line.upper().startswith("RUN "):
            continue
        for m in re.finditer(r"apt-get install ([^;&|]*)", line):
            for w in m.group(1).split():
                if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w):
                    pkgs.add(w)
    return pkgs


def ci_packages():
    with open(os.path.join(SRC, ".ci", "packages")) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


# --------------------------------------------------------------------------
# 1. services

def case_services(c):
    services = c.get("services") or {}
    missing = [s for s in SERVICES if s not in services]
    check(not missing, "docker-compose.yml lacks services %s" % missing)
    for name, svc in services.items():
        if "build" in svc:
            build_of(svc, name)
        image = svc.get("image")
        if image and "build" not in svc:
            check(":" in image and not image.endswith(":latest"),
                  "%s: image %r is not pinned to a version" % (name, image))
        for host, _, _ in mounts(svc):
            check(os.path.exists(host), "%s mounts %s, which does not exist"
                  % (name, host))
        for p in svc.get("ports") or []:
            p = str(p)
            check(p.startswith("127.0.0.1:"), "%s publishes %s beyond "
                  "localhost (demo passwords)" % (name, p))
    for name in ("postgres", "kafka"):
        check(healthcheck_cmd(services[name]), "%s has no healthcheck" % name)
    check("pg_isready" in healthcheck_cmd(services["postgres"]),
          "postgres's healthcheck does not use pg_isready")
    check("kafka-broker-api-versions" in healthcheck_cmd(services["kafka"]),
          "kafka's healthcheck does not ask the broker API")
    deps = services["walcastd"].get("depends_on") or {}
    for name in ("postgres", "kafka"):
        check(isinstance(deps, dict) and
              (deps.get(name) or {}).get("condition") == "service_healthy",
              "walcastd must wait for %s to be healthy: depends_on %s"
              % (name, deps))
    wdeps = services["workload"].get("depends_on") or {}
    for name in ("postgres", "walcastd"):
        check((wdeps.get(name) or {}).get("condition") == "service_healthy",
              "workload must wait for %s to be healthy: %s" % (name, wdeps))
    # walcastd is healthy when its /readyz says so, on the metrics port
    # its configuration listens on, which is also published
    port = metrics_port(load_yaml(walcast_config(c)))
    hc = healthcheck_cmd(services["walcastd"])
    check("/readyz" in hc and "/%d " % port in hc.replace("&&", " "),
          "walcastd's healthcheck does not ask /readyz on port %d: %s"
          % (port, hc))
    published = [str(p).split(":")[-1] for p in
                 services["walcastd"].get("ports") or []]
    check(str(port) in published, "walcastd's metrics port %d is not "
          "published: %s" % (port, published))
    restart = str(services["workload"].get("restart", "no"))
    check(restart == "no", "the one-shot workload must not restart (%s)"
          % restart)


# --------------------------------------------------------------------------
# 2. postgres

def pg_settings(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip().strip("'")
    return out


def case_postgres(c):
    svc = c["services"]["postgres"]
    ctx, dockerfile = build_of(svc, "postgres")
    stages = dockerfile_stages(dockerfile)
    base = stages[-1]["from"]
    m = re.fullmatch(r"postgres:(\d+)(?:[.-].*)?", base)
    check(m, "%s: not the official postgres image: FROM %s"
          % (dockerfile, base))
    major = m.group(1)
    text = " ".join(stages[-1]["lines"])
    check(re.search(r"postgresql-(%s|\$PG_MAJOR|\$\{PG_MAJOR\})-wal2json"
                    % major, text),
          "%s does not install postgresql-%s-wal2json" % (dockerfile, major))
    # the snippet it copies in, and that it is included
    copies = re.findall(r"COPY (\S+\.conf) (\S+)", text)
    snippets = [repo_path(src, ctx) for src, _ in copies]
    check(snippets, "%s copies no .conf snippet" % dockerfile)
    settings = {}
    for s in snippets:
        check(os.path.isfile(s), "%s: %s is missing" % (dockerfile, s))
        settings.update(pg_settings(s))
    check(settings.get("wal_level") == "logical",
          "wal_level = logical missing: %s" % settings)
    for k in ("max_replication_slots", "max_wal_senders"):
        check(int(settings.get(k, "0")) >= 1, "%s missing or 0" % k)
    # upstream PostgreSQL (the official image) does not know it and would
    # not start: "unrecognized configuration parameter"
    check("output_plugin_libraries" not in settings,
          "the snippet sets output_plugin_libraries, which the official "
          "image's PostgreSQL does not know")
    m = re.search(r"include '([^']+)'\"? *>> *\S*/postgresql\.conf\.sample",
                  text)
    check(m and m.group(1) in [dst for _, dst in copies],
          "%s does not include the snippet it copies from "
          "postgresql.conf.sample" % dockerfile)
    env = env_of(svc)
    check(env.get("POSTGRES_PASSWORD"), "postgres needs POSTGRES_PASSWORD")
    image = c["services"]["workload"].get("image", "")
    check(image.startswith("postgres:%s" % major),
          "workload image %r: use the server's major version %s"
          % (image, major))


# --------------------------------------------------------------------------
# 3. kafka

def listeners(value):
    """"NAME://host:port,..." -> {NAME: (host, port)}"""
    out = {}
    for item in value.split(","):
        m = re.fullmatch(r"\s*([A-Z_]+)://([^:]*):(\d+)\s*", item)
        check(m, "cannot read listener %r" % item)
        out[m.group(1)] = (m.group(2), int(m.group(3)))
    return out


def case_kafka(c):
    svc = c["services"]["kafka"]
    image = svc.get("image", "")
    check(image.startswith("apache/kafka:"),
          "kafka: not the official apache/kafka image: %r" % image)
    env = env_of(svc)
    roles = set(env.get("KAFKA_PROCESS_ROLES", "").split(","))
    check(roles == {"broker", "controller"},
          "KAFKA_PROCESS_ROLES=%s: one KRaft node is broker and controller"
          % env.get("KAFKA_PROCESS_ROLES"))
    node = env.get("KAFKA_NODE_ID")
    voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")
    check(re.fullmatch(r"%s@kafka:(\d+)" % node, voters),
          "KAFKA_CONTROLLER_QUORUM_VOTERS=%s: expected the node itself, "
          "%s@kafka:PORT" % (voters, node))
    lst = listeners(env.get("KAFKA_LISTENERS", ""))
    adv = listeners(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    proto = dict(x.split(":") for x in
                 env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "")
                 .split(","))
    for name in list(lst) + list(adv):
        check(name in proto, "listener %s has no security protocol" % name)
    ctrl = env.get("KAFKA_CONTROLLER_LISTENER_NAMES")
    check(ctrl in lst, "controller listener %s is not in KAFKA_LISTENERS"
          % ctrl)
    check(int(voters.rsplit(":", 1)[1]) == lst[ctrl][1],
          "the quorum voter's port is not the controller listener's")
    for name, (host, port) in adv.items():
        check(name in lst and lst[name][1] == port,
              "advertised %s port %d is not a listener port" % (name, port))
    check(env.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "1",
          "one node: KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR must be 1")
    # the published port is advertised as localhost, for host clients
    for p in svc.get("ports") or []:
        parts = str(p).split(":")
        host_port, cport = int(parts[-2]), int(parts[-1])
        check(any(h_ in ("localhost", "127.0.0.1") and port == cport ==
                  host_port for h_, port in adv.values()),
              "published port %s is not advertised as localhost:%d"
              % (p, host_port))
    # walcastd's brokers: an advertised listener on the kafka service
    cfg = load_yaml(walcast_config(c))
    brokers = [s["kafka"]["properties"]["bootstrap.servers"]
               for s in cfg["sinks"] if "kafka" in s]
    check(brokers, "docker/walcast.yaml has no kafka sink")
    for b in brokers[0].split(","):
        check(b.strip() in ["%s:%d" % hp for hp in adv.values()] and
              b.startswith("kafka:"),
              "walcastd's bootstrap server %s is not the kafka service's "
              "advertised listener (%s)" % (b, adv))


# --------------------------------------------------------------------------
# 4. the walcastd config

def walcast_config(c):
    svc = c["services"]["walcastd"]
    for host, target, _ in mounts(svc):
        if target == CONFIG_IN_CONTAINER:
            return host
    fail("walcastd mounts nothing at %s: %s" % (CONFIG_IN_CONTAINER,
                                               svc.get("volumes")))


def metrics_port(cfg):
    listen = (cfg.get("metrics") or {}).get("listen")
    check(listen, "docker/walcast.yaml sets no metrics.listen")
    return int(str(listen).rsplit(":", 1)[1])


def dsn_params(dsn):
    return dict(w.split("=", 1) for w in shlex.split(dsn))


def case_walcast_config(c):
    path = walcast_config(c)
    r = h.run([h.binary("walcastd"), "-c", path, "--check"])
    if r.returncode != 0 and "unknown sink type" in r.stderr:
        fail("%s uses a sink type this walcastd does not know yet (is the "
             "Kafka sink built?): %s" % (path, r.stderr.strip()))
    check(r.returncode == 0, "walcastd -c %s --check: exit %d: %s"
          % (path, r.returncode, r.stderr.strip()))
    cfg = load_yaml(path)
    dsn = dsn_params(cfg["source"]["dsn"])
    pg_env = env_of(c["services"]["postgres"])
    check(dsn.get("host") == "postgres", "dsn host %r is not the postgres "
          "service" % dsn.get("host"))
    check(dsn.get("dbname") == pg_env.get("POSTGRES_DB"),
          "dsn dbname %r is not POSTGRES_DB %r"
          % (dsn.get("dbname"), pg_env.get("POSTGRES_DB")))
    # the role: created by the init script the postgres image copies in
    ctx, dockerfile = build_of(c["services"]["postgres"], "postgres")
    init = "".join(open(os.path.join(ctx, f)).read() for f in
                   os.listdir(ctx) if f.endswith(".sql"))
    user = dsn.get("user")
    check(re.search(r"CREATE ROLE %s\b[^;]*\bLOGIN\b[^;]*\bREPLICATION\b"
                    % re.escape(user), init, re.I),
          "no init script creates role %r with LOGIN REPLICATION" % user)
    wenv = env_of(c["services"]["walcastd"])
    m = re.search(r"CREATE ROLE %s\b[^;]*PASSWORD '([^']*)'"
                  % re.escape(user), init, re.I)
    check(m and wenv.get("PGPASSWORD") == m.group(1),
          "walcastd's PGPASSWORD does not match role %s's password" % user)
    files = [s["file"] for s in cfg["sinks"] if "file" in s]
    check(any(f.get("path") == "-" for f in files),
          "no file sink to stdout (\"-\") in %s" % path)


# --------------------------------------------------------------------------
# 5. the Dockerfile

def case_dockerfile(c):
    _, dockerfile = build_of(c["services"]["walcastd"], "walcastd")
    stages = dockerfile_stages(dockerfile)
    check(len(stages) >= 2, "%s: expected a build and a runtime stage"
          % dockerfile)
    build, runtime = stages[0], stages[-1]
    for st in (build, runtime):
        check(re.fullmatch(r"debian:12(-slim)?", st["from"]),
              "%s: stage FROM %s is not Debian 12" % (dockerfile, st["from"]))
    btext = "\n".join(build["lines"])
    # the build deps: .ci/packages minus an explicit test-only list
    m = re.search(r"printf '%s\\n' ([^>]*)> ([^\s;]+)", btext)
    check(m and ".ci/packages" in btext and "grep -vxF -f %s" % m.group(2)
          in btext, "%s: the build stage does not install .ci/packages "
          "minus a test-only list" % dockerfile)
    test_only = set(m.group(1).split())
    packages = set(ci_packages())
    stale = sorted(test_only - packages)
    check(not stale, "test-only packages no longer in .ci/packages: %s"
          % stale)
    for needed in ("build-essential", "cmake", "pkg-config", "libpq-dev",
                   "libyaml-dev", "librdkafka-dev"):
        check(needed in packages and needed not in test_only,
              "the build stage would lack %s" % needed)
    check(re.search(r"cmake --build", btext) and
          re.search(r"cmake --install \S+ --prefix /usr", btext),
          "the build stage must build and `cmake --install --prefix /usr`")
    rtext = "\n".join(runtime["lines"])
    rpk = apt_installs(runtime["lines"])
    check(RUNTIME_PACKAGES <= rpk, "the runtime stage lacks %s"
          % sorted(RUNTIME_PACKAGES - rpk))
    dev = sorted(p for p in rpk if p.endswith("-dev"))
    check(not dev, "the runtime stage installs -dev packages %s" % dev)
    check(re.search(r"^COPY --from=%s " % re.escape(build["name"] or "0"),
                    rtext, re.M),
          "the runtime stage does not copy the installed tree from the "
          "build stage")
    users = [l.split()[1] for l in runtime["lines"] if l.startswith("USER ")]
    check(users and users[-1] not in ("root", "0"),
          "the runtime stage runs as root: USER %s" % users)
    cmds = [l for l in runtime["lines"] if l.startswith("CMD ")]
    check(cmds and cmds[-1] == 'CMD ["walcastd", "-c", "%s"]'
          % CONFIG_IN_CONTAINER, "CMD is %s" % cmds)
    with open(os.path.join(SRC, ".dockerignore")) as f:
        ignored = f.read().split()
    check("build" in ignored and ".git" in ignored,
          ".dockerignore should keep build trees and .git out of the "
          "context")
    known_to_apt(rpk | (packages - test_only))
    runtime_libraries(rpk)


def known_to_apt(pkgs):
    """On Debian 12, the images' release, every package the stages
    install must exist under that name."""
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = ""
    if not debian.startswith("12") or not shutil.which("apt-cache"):
        h.log("not Debian 12: package names are not looked up")
        return
    # one call: apt-cache policy prints a block for each package it knows
    # ("NAME:" and its candidate version) and skips the others
    r = h.run(["apt-cache", "policy"] + sorted(pkgs))
    known = {m.group(1) for m in re.finditer(
        r"^(\S+?)(?::\w+)?:\n\s+Installed: .*\n\s+Candidate: (?!\(none\))",
        r.stdout, re.M)}
    unknown = sorted(pkgs - known)
    check(not unknown, "packages unknown to apt on Debian 12: %s" % unknown)


def needed_libs(path):
    r = h.run(["readelf", "-d", path])
    check(r.returncode == 0, "readelf -d %s: %s" % (path, r.stderr))
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)


def resolved(path):
    """{soname: path} as the dynamic loader finds them."""
    r = h.run(["ldd", path])
    return dict(re.findall(r"^\s*(\S+) => (/\S+)", r.stdout, re.M))


def package_of(path):
    for p in (path, os.path.realpath(path),
              re.sub(r"^/usr/lib/", "/lib/", path),
              re.sub(r"^/lib/", "/usr/lib/", path)):
        r = h.run(["dpkg", "-S", p])
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    return None


def runtime_libraries(installed):
    if not shutil.which("dpkg") or not shutil.which("readelf"):
        h.log("no dpkg/readelf: the runtime libraries are not matched to "
              "packages")
        return
    missing = {}
    for exe in (h.binary("walcastd"), h.binary("walcast")):
        where = resolved(exe)
        for lib in needed_libs(exe):
            # sanitizer runtimes: CI's sanitized build only
            if re.match(r"lib(asan|ubsan|lsan|tsan)\.", lib):
                continue
            check(lib in where, "%s: %s not found by ldd" % (exe, lib))
            pkg = package_of(where[lib])
            check(pkg, "no Debian package owns %s" % where[lib])
            if pkg not in installed and pkg not in BASE_PACKAGES:
                missing[lib] = pkg
    check(not missing, "the runtime stage does not install what walcastd "
          "links: %s" % ", ".join("%s (%s)" % kv for kv in missing.items()))


# --------------------------------------------------------------------------
# 6. the workload, for real

def case_workload(c):
    if not shutil.which("psql"):
        h.log("SKIP workload: no psql")
        return
    svc = c["services"]["workload"]
    script = [h_ for h_, t, _ in mounts(svc)
              if t in " ".join(svc.get("entrypoint") or [])]
    check(len(script) == 1, "cannot tell the workload's script from %s"
          % svc)
    script = script[0]
    tmp = h.make_tmpdir()
    cluster = h.Cluster(tmpdir=tmp)
    # the compose network's names, replaced by this machine's servers
    cfg = load_yaml(walcast_config(c))
    cfg["source"]["dsn"] = cluster.dsn()
    port = h.free_port()
    cfg["metrics"]["listen"] = "127.0.0.1:%d" % port
    if "state_dir" in cfg:  # the container's directory
        cfg["state_dir"] = os.path.join(tmp, "state")
        os.mkdir(cfg["state_dir"])
    mock = None
    exe = os.environ.get("WC_KAFKA_MOCK") or os.path.join(
        installtree.build_dir(), "tests", "tools", "kafka_mock")
    if os.access(exe, os.X_OK):
        mock = subprocess.Popen([exe], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        bootstrap = mock.stdout.readline().strip()
        for s in cfg["sinks"]:
            if "kafka" in s:
                s["kafka"]["properties"]["bootstrap.servers"] = bootstrap
    else:
        h.log("no kafka_mock built: the Kafka sink is left out")
        cfg["sinks"] = [s for s in cfg["sinks"] if "kafka" not in s]
    local = os.path.join(tmp, "walcast.yaml")
    with open(local, "w") as f:
        yaml.safe_dump(cfg, f)
    # the container's health check, pointed at this walcastd
    hc = c["services"]["walcastd"]["healthcheck"]["test"]
    check(hc[0] == "CMD", "walcastd's healthcheck is not a CMD list: %s"
          % hc)
    probe = [a.replace("/%d" % metrics_port(load_yaml(walcast_config(c))),
                       "/%d" % port) for a in hc[1:]]
    try:
        d = h.start_walcastd(local, tmp, name="walcastd-compose")
        if shutil.which(probe[0]):
            h.wait_until(lambda: h.run(probe).returncode == 0, timeout=30,
                         what="walcastd's docker healthcheck to pass")
        env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(cluster.port),
                   PGUSER="postgres", PGDATABASE="postgres",
                   WORKLOAD_PAUSE="0")
        env.pop("PGPASSWORD", None)
        r = subprocess.run(["sh", script], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        check(r.returncode == 0, "%s failed (exit %d):\n%s"
              % (script, r.returncode, r.stdout))

        def arrived():
            n = sum('"schema":"town6-demo"' in line
                    for line in d.stdout().splitlines())
            return n >= 35 and n
        n = h.wait_until(arrived, timeout=60,
                         what="the workload's changes on walcastd's stdout")
        ops = {}
        for line in d.stdout().splitlines():
            m = re.search(r'"op":"(\w+)"', line)
            if m and '"schema":"town6-demo"' in line:
                ops[m.group(1)] = ops.get(m.group(1), 0) + 1
        # 5 rounds of 3 inserts, 1 update, 1 delete; then a bulk delete of
        # the 10 rows left
        check(ops == {"insert": 15, "update": 5, "delete": 15},
              "changes of town6-demo on stdout: %s" % ops)
        d.stop()
        if shutil.which(probe[0]):
            check(h.run(probe).returncode != 0,
                  "the healthcheck passes with walcastd stopped")
        h.log("workload: %d changes arrived: %s" % (n, ops))
    finally:
        if mock:
            mock.stdin.close()
            mock.wait(timeout=30)


def main():
    if yaml is None:
        fail("PyYAML is missing: install python3-yaml (it is in "
             ".ci/packages) to check docker-compose.yml")
    c = load_yaml(COMPOSE)
    check(isinstance(c, dict) and "services" in c,
          "docker-compose.yml has no services")
    cases = h.Cases()
    cases.run("services", case_services, c)
    cases.run("postgres", case_postgres, c)
    cases.run("kafka", case_kafka, c)
    cases.run("walcast config", case_walcast_config, c)
    cases.run("dockerfile", case_dockerfile, c)
    cases.run("workload", case_workload, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(main)
