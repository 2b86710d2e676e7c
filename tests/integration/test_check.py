# SPDX-License-Identifier: MIT
"""`walcastd --check` and `walcast check` catch what would fail at start.

Each bad configuration below passed the check before and failed only
later (at the first connection, after the slot was created, or when the
sink started).  Now both commands exit 78 with FILE:LINE:COL and a
message that says what to fix, and walcastd refuses to start on it the
same way, before it creates a slot:

1. a source.dsn libpq cannot parse (never showing the password);
2. a file sink whose directory does not exist (but for the state
   directory, which systemd creates at start), or that walcast may not
   write to (checked as the postgres user: root may write anywhere);
3. schema and table patterns with a control character;
4. a plugin's own required keys: the jsonl plugin without `file`, or with
   a bad `fsync`, through the plugin ABI's check entry (1.3).  A SIGHUP
   reload to such a configuration is refused by the same check, and the
   configuration in force keeps delivering.
"""

import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402


def run_check(cfg, as_postgres=False):
    """[(what, CompletedProcess)] of walcastd --check and walcast check."""
    runs = [("walcastd --check", [h.binary("walcastd"), "-c", cfg, "--check"]),
            ("walcast check", [h.binary("walcast"), "check", "-c", cfg])]
    out = []
    for what, argv in runs:
        if as_postgres:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        out.append((what, h.run(argv, timeout=30)))
    return out


def write(c, name, text):
    path = os.path.join(c.tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def head(c, slot, extra=""):
    return ("source:\n  dsn: %s\n  slot: %s\n  status_interval: 1s\n%s"
            % (h.yq(c.dsn()), slot, extra))


def expect_refused(cfg, line, words, absent=(), as_postgres=False):
    """Both checks exit 78 with CFG:LINE:COL: and every word; none of the
    absent words shows."""
    pat = re.compile(r"(^|[\s>])" + re.escape(cfg) + r":%d:\d+: \S" % line,
                     re.M)
    probs = []
    for what, r in run_check(cfg, as_postgres):
        h.log("%s: exit %d: %s" % (what, r.returncode, r.stderr.strip()))
        if r.returncode != 78:
            probs.append("%s exited %d, expected 78" % (what, r.returncode))
        if not pat.search(r.stderr):
            probs.append("%s: no %s:%d:COL: in %r" % (what, cfg, line,
                                                      r.stderr))
        for w in words:
            if w not in r.stderr:
                probs.append("%s: %r lacks %r" % (what, r.stderr, w))
        for w in absent:
            if w in r.stderr:
                probs.append("%s: %r shows %r" % (what, r.stderr, w))
    if probs:
        fail("\n  ".join(probs))


def expect_valid(cfg, as_postgres=False):
    for what, r in run_check(cfg, as_postgres):
        check(r.returncode == 0, "%s exited %d on a valid configuration: %s"
              % (what, r.returncode, r.stderr))


def expect_start_refused(c, cfg, slot, words):
    """walcastd -c exits 78 with the words, and leaves no slot behind."""
    r = h.run([h.binary("walcastd"), "-c", cfg], timeout=60)
    check(r.returncode == 78, "walcastd exited %d, expected 78: %s"
          % (r.returncode, r.stderr))
    for w in words:
        check(w in r.stderr, "walcastd: %r lacks %r" % (r.stderr, w))
    check(c.slot(slot) is None, "walcastd created slot %s before refusing "
          "the configuration" % slot)


def case_dsn(c):
    # libpq reads "password=abc def" as a password "abc" and a keyword
    # "def" without a value
    bad = c.dsn() + " password=abc def"
    cfg = write(c, "dsn", "source:\n  dsn: %s\n  slot: chk_dsn\n"
                "sinks:\n  - file: { path: \"-\" }\n" % h.yq(bad))
    words = ['"source.dsn" is not a connection string libpq can read',
             'missing "=" after "***"']
    expect_refused(cfg, 2, words, absent=("abc", '"def"'))
    expect_start_refused(c, cfg, "chk_dsn", words)


def case_file_sink(c):
    missing = os.path.join(c.tmp, "no-such-dir", "out.jsonl")
    cfg = write(c, "file_missing", head(c, "chk_file") +
                "sinks:\n  - file: { path: \"-\" }\n"
                "  - file:\n      path: %s\n" % h.yq(missing))
    expect_refused(cfg, 7, ['file sink "%s": directory "%s" does not exist'
                            % (missing, os.path.dirname(missing)),
                            "create it"])
    expect_start_refused(c, cfg, "chk_file", [])

    # "-" is stdout, a new file in a writable directory is fine
    ok = write(c, "file_ok", head(c, "chk_file") +
               "sinks:\n  - file: { path: \"-\" }\n"
               "  - file: { path: %s }\n"
               % h.yq(os.path.join(c.tmp, "new.jsonl")))
    expect_valid(ok)

    # the state directory may be missing: systemd creates it
    # (StateDirectory=) when it starts walcastd, after an operator's check;
    # a directory below it may not
    state = os.path.join(c.tmp, "state-to-be")
    cfg = write(c, "file_state_dir", head(c, "chk_file") +
                "state_dir: %s\nsinks:\n  - file: { path: %s }\n"
                % (h.yq(state), h.yq(os.path.join(state, "changes.jsonl"))))
    expect_valid(cfg)
    below = os.path.join(state, "sub", "changes.jsonl")
    cfg = write(c, "file_below_state_dir", head(c, "chk_file") +
                "state_dir: %s\nsinks:\n  - file: { path: %s }\n"
                % (h.yq(state), h.yq(below)))
    expect_refused(cfg, 7, ['directory "%s" does not exist'
                            % os.path.dirname(below)])

    if not h.IS_ROOT:
        h.log("not root: the not-writable cases need another user, skipped")
        return
    # as the postgres user: a directory, and a file, root keeps to itself
    locked = os.path.join(c.tmp, "root-only")
    os.mkdir(locked, 0o755)
    os.chmod(locked, 0o755)
    path = os.path.join(locked, "out.jsonl")
    cfg = write(c, "file_locked", head(c, "chk_file") +
                "sinks:\n  - file:\n      path: %s\n" % h.yq(path))
    expect_refused(cfg, 6, ['file sink "%s": directory "%s" is not writable'
                            % (path, locked), "Permission denied"],
                   as_postgres=True)
    with open(path, "w") as f:
        f.write("")
    os.chmod(path, 0o644)
    expect_refused(cfg, 6, ['file sink "%s" is not writable' % path,
                            "chmod u+w"], as_postgres=True)
    os.chmod(locked, 0o777)
    os.chmod(path, 0o666)
    expect_valid(cfg, as_postgres=True)


def case_patterns(c):
    for n, (key, line_text) in enumerate([
            ("tables", '    include: ["public.a\\nb"]'),
            ("tables", '    exclude: ["t\\u0001"]'),
            ("schemas", '    exclude: ["s\\tx"]')]):
        slot = "chk_pat%d" % n
        cfg = write(c, "pattern%d" % n, head(c, slot) +
                    "filter:\n  %s:\n%s\nsinks:\n  - file: { path: \"-\" }\n"
                    % (key, line_text))
        words = ["control character", "schema and table patterns cannot "
                 "hold control characters"]
        expect_refused(cfg, 7, words)
        # wal2json would refuse it only at START_REPLICATION, after
        # walcastd created the slot
        expect_start_refused(c, cfg, slot, words)


def jsonl_so():
    so = os.environ.get("WC_JSONL_SO")
    if not so:
        fail("WC_JSONL_SO is not set (plugins/jsonl is not built)")
    return so


def case_plugin_keys(c):
    so = jsonl_so()
    audit = os.path.join(c.tmp, "audit.jsonl")
    cfg = write(c, "jsonl_nofile", head(c, "chk_jsonl") +
                "sinks:\n  - plugin:\n      path: %s\n"
                "      config: { fsync: false }\n" % h.yq(so))
    words = ['plugin "%s" refused its configuration: missing required '
             'config key "file"' % so]
    expect_refused(cfg, 6, words)
    expect_start_refused(c, cfg, "chk_jsonl", words)

    cfg = write(c, "jsonl_fsync", head(c, "chk_jsonl") +
                "sinks:\n  - file: { path: \"-\" }\n"
                "  - plugin:\n      path: %s\n"
                "      config: { file: %s, fsync: maybe }\n"
                % (h.yq(so), h.yq(audit)))
    expect_refused(cfg, 7, ['plugin "%s" refused its configuration: invalid '
                            'value "maybe" for config key "fsync"' % so])
    check(not os.path.exists(audit), "the check started the plugin: %s "
          "exists" % audit)

    cfg = write(c, "jsonl_ok", head(c, "chk_jsonl") +
                "sinks:\n  - plugin:\n      path: %s\n"
                "      config: { file: %s }\n" % (h.yq(so), h.yq(audit)))
    expect_valid(cfg)
    check(not os.path.exists(audit), "the check started the plugin: %s "
          "exists" % audit)


def case_reload(c):
    """A reload to a configuration whose plugin lacks a required key is
    refused by the plugin's check; the sinks in force keep delivering."""
    so = jsonl_so()
    c.sql("CREATE TABLE IF NOT EXISTS chk_t (id int PRIMARY KEY)")
    out = os.path.join(c.tmp, "reload.jsonl")
    good = head(c, "chk_reload") + "sinks:\n  - file: { path: %s }\n" % \
        h.yq(out)
    cfg = write(c, "reload", good)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-reload")
    try:
        with open(cfg, "w") as f:
            f.write(good + "  - plugin:\n      path: %s\n"
                    "      config: { fsync: true }\n" % h.yq(so))
        d.send(signal.SIGHUP)
        h.wait_until(lambda: "reload refused" in d.stderr(), timeout=30,
                     what="the reload to be refused")
        err = d.stderr()
        check('refused its configuration: missing required config key '
              '"file"' in err, "the refusal does not come from the plugin's "
              "check:\n%s" % err)
        c.sql("INSERT INTO chk_t VALUES (1)")

        def delivered():
            if not os.path.exists(out):
                return False
            with open(out) as f:
                return '"chk_t"' in f.read()
        h.wait_until(delivered, timeout=30,
                     what="the configuration in force to deliver")
        check(d.poll() is None, "walcastd exited after the refused reload\n%s"
              % d.describe())
    finally:
        d.stop()
    c.sql("SELECT pg_drop_replication_slot('chk_reload')")


def test():
    c = h.Cluster()
    cases = h.Cases()
    for name, fn in [
            ("a DSN libpq cannot parse", case_dsn),
            ("a file sink that cannot be written", case_file_sink),
            ("patterns with control characters", case_patterns),
            ("a plugin's required keys", case_plugin_keys),
            ("a reload refused by a plugin's check", case_reload)]:
        cases.run(name, fn, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
