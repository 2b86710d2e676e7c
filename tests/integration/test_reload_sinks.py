# SPDX-License-Identifier: MIT
"""A reload closes the sinks in force before the new ones open.

1. A file sink whose write failed half way (the file size limit, as a full
   disk would) holds the rest of the line; a reload after the limit is
   lifted must leave only whole lines in the file, and every change.
2. A plugin rebuilt at the same path (a new inode renamed over it) runs
   its new code after SIGHUP, not the code dlopen() had loaded before.
3. A reload looks a Kafka sink's tables up in the catalog once (its
   column rules are checked before the sinks in force are let go, its
   enum types read for value_format: debezium), counted in the server's
   connection log.
"""

import json
import os
import resource
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def start_ignoring_sigxfsz(cfg, tmpdir, name):
    """walcastd with SIGXFSZ ignored, so that a write past RLIMIT_FSIZE
    fails with EFBIG instead of killing it.  Python ignores SIGXFSZ
    itself, and the ignored disposition survives exec."""
    return h.Proc([sys.executable, "-c",
                   "import os, sys; os.execv(sys.argv[1], sys.argv[1:])",
                   h.binary("walcastd"), "-c", cfg], tmpdir, name=name)


def ids_in(path):
    out = []
    for r in h.read_jsonl(path):
        if r.get("op") == "insert":
            out.append(int(r["columns"][0]["value"]))
    return out


def case_half_line(c):
    c.sql("CREATE TABLE big (id int PRIMARY KEY, v text);")
    out = os.path.join(c.tmp, "half.jsonl")
    cfg = os.path.join(c.tmp, "half.yaml")
    # RLIMIT_FSIZE holds for walcastd's stderr file too: a sink file far
    # larger than the log keeps the log writable
    with open(out, "w") as f:
        f.write("{}\n" * 400000)
    h.write_config(cfg, c.dsn(), "half", out,
                   extra="shutdown_timeout: 2s\n")
    d = start_ignoring_sigxfsz(cfg, c.tmp, "walcastd-half")
    d.wait_ready()
    c.sql("INSERT INTO big VALUES (1, repeat('a', 300));")
    h.wait_until(lambda: h.count_lines(out) >= 400001, timeout=20,
                 what="the first line")
    size = os.path.getsize(out)
    # room for half of the next line only
    limit = size + 200
    resource.prlimit(d.pid, resource.RLIMIT_FSIZE,
                     (limit, resource.RLIM_INFINITY))
    c.sql("INSERT INTO big SELECT g, repeat('b', 300) FROM "
          "generate_series(2, 6) g;")
    h.wait_until(lambda: d.stderr().count("File too large") >= 1,
                 timeout=20, what="a failed write\n" + d.describe())
    # three failures in a row: the next retry is seconds away
    h.wait_until(lambda: "3 times in a row" in d.stderr(), timeout=30,
                 what="three failed attempts\n" + d.describe())
    with open(out, "rb") as f:
        data = f.read()
    check(not data.endswith(b"\n"),
          "the failed write left no half line to mend (%d bytes)" % len(data))
    resource.prlimit(d.pid, resource.RLIMIT_FSIZE,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    n = d.stderr().count("reloaded ")
    d.send(signal.SIGHUP)
    h.wait_until(lambda: d.stderr().count("reloaded ") > n, timeout=20,
                 what="the reload")
    c.sql("INSERT INTO big VALUES (7, 'after');")
    h.wait_until(lambda: b'"after"' in open(out, "rb").read(), timeout=30,
                 what="the change after the reload\n" + d.describe())
    d.stop()
    # every line whole JSON (read_jsonl fails on any that is not)
    got = ids_in(out)
    check(set(got) == set(range(1, 8)),
          "changes missing: %r" % sorted(set(range(1, 8)) - set(got)))


def case_plugin_rebuilt(c):
    jsonl = os.environ.get("WC_JSONL_SO")
    recorder = os.environ.get("WC_RECORDER_SO")
    check(jsonl and recorder, "WC_JSONL_SO and WC_RECORDER_SO must be set")
    c.sql("CREATE TABLE pl (id int PRIMARY KEY);")
    pdir = h.trusted_tmpdir()
    path = os.path.join(pdir, "sink.so")
    shutil.copyfile(jsonl, path)
    os.chmod(path, 0o755)
    by_jsonl = os.path.join(c.tmp, "by_jsonl.jsonl")
    by_recorder = os.path.join(c.tmp, "by_recorder.jsonl")
    extra = ("sinks:\n  - plugin:\n      path: %s\n      config:\n"
             "        file: %s\n        out: %s\n"
             % (h.yq(path), h.yq(by_jsonl), h.yq(by_recorder)))
    cfg = h.write_config(os.path.join(c.tmp, "plug.yaml"), c.dsn(), "plug",
                         None, extra=extra)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-plug")
    c.sql("INSERT INTO pl VALUES (1);")
    h.wait_until(lambda: h.count_lines(by_jsonl) >= 1, timeout=20,
                 what="the jsonl plugin's line")
    # rebuilt: a new file renamed over the path, as an install does
    tmp = path + ".new"
    shutil.copyfile(recorder, tmp)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)
    n = d.stderr().count("reloaded ")
    d.send(signal.SIGHUP)
    h.wait_until(lambda: d.stderr().count("reloaded ") > n, timeout=20,
                 what="the reload")
    lines = h.count_lines(by_jsonl)
    c.sql("INSERT INTO pl VALUES (2);")
    h.wait_until(lambda: h.count_lines(by_recorder) >= 1, timeout=20,
                 what="the rebuilt plugin's output (the old code still "
                 "runs?)\n" + d.describe())
    d.stop()
    check(h.count_lines(by_jsonl) == lines,
          "the old plugin still wrote after the reload")


def case_new_sinks_fail(c):
    """New sinks that do not start (a file in a directory that does not
    exist): the sinks in force, closed first, start again and go on."""
    c.sql("CREATE TABLE fb (id int PRIMARY KEY);")
    out = os.path.join(c.tmp, "fallback.jsonl")
    cfg = os.path.join(c.tmp, "fallback.yaml")
    h.write_config(cfg, c.dsn(), "fallback", out)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-fallback")
    c.sql("INSERT INTO fb VALUES (1);")
    h.wait_until(lambda: h.count_lines(out) >= 1, timeout=20,
                 what="the first line")
    h.write_config(cfg, c.dsn(), "fallback",
                   os.path.join(c.tmp, "no-such-dir", "x.jsonl"))
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reload " in d.stderr() and
                 ("reload failed" in d.stderr() or
                  "reload refused" in d.stderr()), timeout=20,
                 what="the failed reload\n" + d.describe())
    c.sql("INSERT INTO fb VALUES (2);")
    h.wait_until(lambda: ids_in(out) == [1, 2], timeout=20,
                 what="row 2 in the file of the sinks in force\n"
                 + d.describe())
    check(d.poll() is None, "walcastd exited\n" + d.describe())
    d.stop()


CATALOG_CONN = "application_name=walcast-catalog"


def catalog_connections(c):
    with open(c.logfile, errors="replace") as f:
        return f.read().count(CATALOG_CONN)


def case_kafka_catalog_once(c):
    c.sql("CREATE TYPE mood AS ENUM ('sad', 'ok');"
          "CREATE TABLE kc (id int PRIMARY KEY, m mood, secret text);")
    c.set_conf(log_connections="on")
    c.reload()
    mock = h.KafkaMock(c.tmp, brokers=1)
    mock.cmd("topic walcast.public.kc 1")
    cfg = os.path.join(c.tmp, "kc.yaml")

    def write(salt):
        sink = (h.kafka_sink_yaml(mock.bootstrap)
                + "      value_format: debezium\n"
                "      schemas_enable: true\n"
                "      mask_salt: %s\n"
                "      columns:\n"
                "        - tables: [kc]\n"
                "          mask: [secret]\n" % salt)
        h.write_config(cfg, c.dsn(), "kc", None, extra="sinks:\n" + sink)

    write("s1")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-kc")
    h.wait_until(lambda: catalog_connections(c) >= 1, timeout=20,
                 what="the start's catalog connection in the server log")
    # whatever else reads the catalog at start is done once streaming
    time.sleep(1)
    before = catalog_connections(c)
    write("s2")
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reloaded " in d.stderr(), timeout=30,
                 what="the reload\n" + d.describe())
    time.sleep(1)
    n = catalog_connections(c) - before
    check(n == 1, "a reload looked the catalog up %d times, expected once"
          "\n%s" % (n, d.describe()))
    # and the new sink has what that one lookup read: the enum's labels,
    # the rule that masks
    c.sql("INSERT INTO kc VALUES (1, 'ok', 'x');")
    recs = []

    def arrived():
        r = h.run([h.kcat_path(), "-b", mock.bootstrap, "-C", "-t",
                   "walcast.public.kc", "-o", "beginning", "-e", "-J", "-q"],
                  timeout=60)
        recs[:] = [json.loads(json.loads(l)["payload"])
                   for l in r.stdout.splitlines()]
        return recs
    h.wait_until(arrived, timeout=30, what="the row in Kafka")
    v = recs[0]
    after = [f for f in v["schema"]["fields"] if f["field"] == "after"][0]
    m = [f for f in after["fields"] if f["field"] == "m"][0]
    check(m.get("name") == "io.debezium.data.Enum" and
          m.get("parameters") == {"allowed": "sad,ok"},
          "the enum after the reload: %r" % m)
    check(v["payload"]["after"]["secret"] not in ("x", None),
          "the masked column after the reload: %r" % v["payload"]["after"])
    d.stop()
    c.sql("SELECT pg_drop_replication_slot('kc')")
    mock.stop()
    c.set_conf(log_connections="off")
    c.reload()


def test():
    c = h.Cluster()
    cases = h.Cases()
    cases.run("a half-written line and a reload", case_half_line, c)
    cases.run("a rebuilt plugin and a reload", case_plugin_rebuilt, c)
    cases.run("new sinks that do not start", case_new_sinks_fail, c)
    cases.run("a reload reads a Kafka sink's catalog once",
              case_kafka_catalog_once, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
