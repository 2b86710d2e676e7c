# SPDX-License-Identifier: MIT
"""What the log shows of hostile names and of secrets.

Forging: a schema and a table whose names hold newlines, carriage returns
and "<0>"/"<1>" (the sd-daemon priority prefix journald reads), without a
primary key, so that wal2json's WARNING for a skipped DELETE and a plugin
handler's failure name them.  Every line walcastd writes on stderr starts
with a priority prefix of a level walcastd uses (3 to 7), the names
appear escaped (\\n, \\r), and with log.format: json every line is one
JSON object whose message carries the same escaped text.

Secrets: connection strings that libpq reads otherwise than their author
meant ("password=... two words", a URI password with '/' or '@', an
sslpassword with a space) make libpq quote pieces of the password.  No
piece of it reaches stderr: walcastd at start, walcastd --check with a
Kafka sink (whose settings are derived from the DSN), a reload to such a
DSN, walcast check and walcast slot status.

Kafka secrets: a Kafka sink's secret properties (sasl.password,
sasl.oauthbearer.config...) are registered like the DSN's password.  An
unsecured-JWT sasl.oauthbearer.config librdkafka could not read is
refused (by --check, walcast check, a start and a reload) naming its
entry; neither a piece of it nor the sasl.password shows.
"""

import json
import os
import re
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "s\n<1>ALERT forged"
TABLE = "x\n<0>FORGED emergency\r\n<2>crit"
ESC_SCHEMA = "s\\n<1>ALERT forged"
ESC_TABLE = "x\\n<0>FORGED emergency\\r\\n<2>crit"


def qi(name):
    return '"%s"' % name.replace('"', '""')


def hostile_table(c):
    c.sql("CREATE SCHEMA %s; CREATE TABLE %s.%s (id int, v text);"
          % (qi(SCHEMA), qi(SCHEMA), qi(TABLE)))


def hostile_changes(c):
    # one transaction: the insert fails in the plugin, the delete (no
    # primary key, no replica identity) is skipped by wal2json with a
    # WARNING naming the table; every replay decodes both again
    c.sql("BEGIN; INSERT INTO %s.%s VALUES (1, 'a'); DELETE FROM %s.%s; "
          "COMMIT;" % (qi(SCHEMA), qi(TABLE), qi(SCHEMA), qi(TABLE)))


def run_hostile(c, name, fmt):
    slot = name.replace("-", "_")
    rec = os.path.join(c.tmp, name + ".rec")
    extra = ("log:\n  format: %s\nsinks:\n" % fmt
             + h.recorder_sink_yaml({"out": rec, "fail_every": 1}))
    cfg = h.write_config(os.path.join(c.tmp, name + ".yaml"), c.dsn(), slot,
                         None, extra=extra)
    d = h.start_walcastd(cfg, c.tmp, name=name)
    hostile_changes(c)
    h.wait_until(lambda: ("failed on" in d.stderr() and "skipped" in
                          d.stderr()) or d.poll() is not None, timeout=30,
                 what=lambda: "the handler error and the warning\n"
                 + d.describe())
    d.stop(expect=None)
    with open(d.stderr_path, "rb") as f:
        raw = f.read()
    c.sql("SELECT pg_drop_replication_slot('%s')" % slot)
    return raw, d


def check_no_raw_names(raw, d):
    text = raw.decode("utf-8", errors="strict")
    for bad in ("\r", "\x1b"):
        check(bad not in text, "a raw %r on stderr\n%s" % (bad, d.describe()))
    return text


def case_text(c):
    raw, d = run_hostile(c, "forge-text", "text")
    text = check_no_raw_names(raw, d)
    lines = text.split("\n")
    check(lines[-1] == "", "stderr does not end with a newline")
    bad = [l for l in lines[:-1] if not re.match(r"^<[3-7]>", l)]
    check(not bad, "lines without a walcastd priority prefix (forged):\n%s"
          "\n%s" % ("\n".join(repr(l) for l in bad), d.describe()))
    warn = [l for l in lines if l.startswith("<4>") and "skipped" in l]
    check(warn and all(ESC_TABLE in l and ESC_SCHEMA in l for l in warn),
          "no <4> warning naming the escaped table: %r\n%s"
          % (warn, d.describe()))
    err = [l for l in lines if l.startswith("<3>") and "failed on" in l]
    check(err and all(ESC_TABLE in l and ESC_SCHEMA in l for l in err),
          "no <3> handler error naming the escaped table: %r\n%s"
          % (err, d.describe()))
    h.log("e.g. %s" % warn[0])


def case_json(c):
    raw, d = run_hostile(c, "forge-json", "json")
    text = check_no_raw_names(raw, d)
    lines = text.split("\n")
    check(lines[-1] == "", "stderr does not end with a newline")
    msgs = []
    for l in lines[:-1]:
        try:
            o = json.loads(l)
        except ValueError:
            h.fail("not one JSON object per line: %r\n%s" % (l, d.describe()))
        check(o.get("priority") in range(3, 8), "priority %r in %r"
              % (o.get("priority"), l))
        check("\n" not in o["message"] and "\r" not in o["message"],
              "a decoded message holds a line break: %r" % o["message"])
        msgs.append((o["priority"], o["message"]))
    check(any(p == 4 and "skipped" in m and ESC_TABLE in m for p, m in msgs),
          "no warning naming the escaped table: %r" % msgs)
    check(any(p == 3 and "failed on" in m and ESC_TABLE in m
              and ESC_SCHEMA in m for p, m in msgs),
          "no handler error naming the escaped table: %r" % msgs)


# DSNs whose password libpq quotes pieces of, with those pieces
def bad_dsns(c):
    p = c.port
    return [
        ("conninfo, unquoted password with a space",
         "host=127.0.0.1 port=%d dbname=postgres user=postgres "
         "password=Zq9secret Wx7tail" % p, ["Zq9secret", "Wx7tail"]),
        ("conninfo, a three-letter piece",
         "host=127.0.0.1 port=%d dbname=postgres user=postgres "
         "password=abc def" % p, ['"def"', "abc def"]),
        ("URI, password with '/'",
         "postgresql://postgres:Pa55/Wd9xyz@127.0.0.1:%d/postgres" % p,
         ["Pa55", "Wd9xyz"]),
        ("URI, password with '@'",
         "postgresql://postgres:Ab12@Cd34@127.0.0.1:%d/postgres" % p,
         ["Ab12", "Cd34"]),
        ("conninfo, sslpassword with a space",
         "host=127.0.0.1 port=%d dbname=postgres user=postgres "
         "sslpassword=Kp4ss phrase9" % p, ["Kp4ss", "phrase9"]),
    ]


def check_clean(what, err, pieces, dsn, quoted=True):
    leaked = [s for s in pieces if s in err]
    check(not leaked, "%s: %r on stderr for dsn %r:\n%s"
          % (what, leaked, dsn, err))
    check(not quoted or "***" in err, "%s: nothing redacted, so nothing quoted the "
          "password? dsn %r:\n%s" % (what, dsn, err))


def case_secrets_cli(c):
    for i, (label, dsn, pieces) in enumerate(bad_dsns(c)):
        h.log("dsn:", label)
        cfg = h.write_config(os.path.join(c.tmp, "sec%d.yaml" % i), dsn,
                             "sec%d" % i, os.path.join(c.tmp, "sec.jsonl"))
        d = h.start_walcastd(cfg, c.tmp, name="sec-walcastd-%d" % i,
                             ready=False)
        rc = d.wait(timeout=30)
        err = d.stderr()
        check(rc != 0, "walcastd started with %r" % dsn)
        check_clean("walcastd " + label, err, pieces, dsn)
        h.log("  walcastd: exit %d: %s" % (rc, err.strip()[-300:]))
        for cmd in (["check", "-c", cfg], ["slot", "status", "-c", cfg]):
            # walcast check may check the DSN without connecting
            r = h.walcast(*cmd)
            check_clean("walcast %s, %s" % (" ".join(cmd[:-2]), label),
                        r.stderr + r.stdout, pieces, dsn,
                        quoted=r.returncode != 0)
            h.log("  walcast %s: exit %d: %s" % (
                " ".join(cmd[:-2]), r.returncode, r.stderr.strip()[-300:]))


def kafka_cfg(c, path, dsn):
    extra = ("sinks:\n"
             + h.kafka_sink_yaml("127.0.0.1:%d" % h.free_port(),
                                 topic="t")
             + "metrics:\n  listen: \"127.0.0.1:%d\"\n" % h.free_port())
    return h.write_config(path, dsn, "seck", None, extra=extra)


def case_secrets_kafka_check_and_reload(c):
    label, dsn, pieces = bad_dsns(c)[0]
    cfg = kafka_cfg(c, os.path.join(c.tmp, "seck.yaml"), dsn)
    r = h.run([h.binary("walcastd"), "-c", cfg, "--check"])
    check(r.returncode == h.EX_CONFIG, "--check with a Kafka sink and %r: "
          "exit %d\n%s" % (dsn, r.returncode, r.stderr))
    check_clean("walcastd --check with a Kafka sink", r.stderr, pieces, dsn)

    # running with a good DSN, reloaded to the bad one: the reload is
    # refused (the Kafka sink's settings cannot be derived) and says why
    good = os.path.join(c.tmp, "seck-run.yaml")
    kafka_cfg(c, good, c.dsn())
    # systemd's STATUS= says why a reload was refused: no secret there
    # either (systemctl status shows it to every user)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(c.tmp, "notify.sock"))
    notify.setblocking(False)
    os.environ["NOTIFY_SOCKET"] = os.path.join(c.tmp, "notify.sock")
    try:
        d = h.start_walcastd(good, c.tmp, name="sec-reload")
    finally:
        del os.environ["NOTIFY_SOCKET"]
    kafka_cfg(c, good, dsn)
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reload" in d.stderr() and "refused" in d.stderr(),
                 timeout=30, what=lambda: "the refused reload\n"
                 + d.describe())
    d.stop(expect=None)
    check_clean("a reload to a bad DSN", d.stderr(), pieces, dsn)
    msgs = []
    while True:
        try:
            msgs.append(notify.recv(4096).decode(errors="replace"))
        except BlockingIOError:
            break
    notify.close()
    status = [m for m in msgs if "reload refused" in m]
    check(status, "no STATUS=reload refused among %r" % msgs)
    check_clean("sd_notify STATUS=", "\n".join(status), pieces, dsn)


# walcast reads an unsecured-JWT sasl.oauthbearer.config before
# librdkafka does (librdkafka 2.0.2 crashes on one it cannot read) and
# names the entry, not the value
KAFKA_OAUTH_ERR = 'Kafka property "sasl.oauthbearer.config": '


def kafka_secret_cfg(c, path, boot, n, oauth_on=True):
    """A Kafka sink whose unsecured-JWT config walcast refuses (its
    "bogus=..." entry is a secret), with a sasl.password; the secrets of
    version n and their expected pieces.  oauth_on False: the same
    secrets, the unsecured JWT not asked for (librdkafka ignores them)."""
    oauth, pw = "Oa%dsecretXq" % n, "Sp%dpasswdZk" % n
    props = {"security.protocol": "SASL_PLAINTEXT" if oauth_on
             else "PLAINTEXT",
             "sasl.mechanisms": "OAUTHBEARER",
             "enable.sasl.oauthbearer.unsecure.jwt": "true",
             "sasl.oauthbearer.config": h.yq("principal=walcast bogus=%s"
                                             % oauth),
             "sasl.password": h.yq(pw)}
    extra = ("log:\n  level: debug\nsinks:\n"
             + h.kafka_sink_yaml(boot, props, topic="t"))
    h.write_config(path, c.dsn(), "seckp", None, extra=extra)
    return [oauth, pw]


def case_secrets_kafka_properties(c):
    mock = h.KafkaMock(c.tmp, brokers=1)
    cfg = os.path.join(c.tmp, "seckp.yaml")
    pieces = kafka_secret_cfg(c, cfg, mock.bootstrap, 1)
    for what, argv in (("walcastd --check", [h.binary("walcastd"), "-c", cfg,
                                             "--check"]),
                       ("walcast check", [h.binary("walcast"), "check", "-c",
                                          cfg])):
        r = h.run(argv)
        check(r.returncode == h.EX_CONFIG and KAFKA_OAUTH_ERR in r.stderr,
              "%s: exit %d\n%s" % (what, r.returncode, r.stderr))
        check_clean(what, r.stderr + r.stdout, pieces, cfg, quoted=False)

    d = h.start_walcastd(cfg, c.tmp, name="sec-kafka-props", ready=False)
    rc = d.wait(timeout=30)
    err = d.stderr()
    check(rc == h.EX_CONFIG and KAFKA_OAUTH_ERR in err,
          "walcastd started with the unsecured JWT:\n%s" % d.describe())
    check_clean("walcastd with a Kafka sink", err, pieces, cfg, quoted=False)
    # the principal ("walcast") is no secret: the log keeps its words
    check(re.search(r"^<6>walcastd \S+ starting with ", err, re.M),
          "the start line lost a word to the redaction:\n%s" % d.describe())

    # running with the same secrets unused, reloaded to new ones the
    # check refuses: registered before the check says a word
    kafka_secret_cfg(c, cfg, mock.bootstrap, 1, oauth_on=False)
    d = h.start_walcastd(cfg, c.tmp, name="sec-kafka-reload")
    pieces2 = kafka_secret_cfg(c, cfg, mock.bootstrap, 2)
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reload refused" in d.stderr()
                 or d.poll() is not None, timeout=60,
                 what=lambda: "the refused reload\n" + d.describe())
    check(KAFKA_OAUTH_ERR in d.stderr(), "the refusal does not name the "
          "property:\n%s" % d.describe())
    d.stop()
    check_clean("walcastd after a reload", d.stderr(), pieces + pieces2, cfg,
                quoted=False)
    c.sql("SELECT pg_drop_replication_slot('seckp')")


def test():
    c = h.Cluster()
    hostile_table(c)
    cases = h.Cases()
    cases.run("forged lines, text format", case_text, c)
    cases.run("forged lines, json format", case_json, c)
    cases.run("secrets: walcastd, walcast check, slot status",
              case_secrets_cli, c)
    cases.run("secrets: --check with Kafka, reload",
              case_secrets_kafka_check_and_reload, c)
    cases.run("secrets: Kafka properties", case_secrets_kafka_properties, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
