# SPDX-License-Identifier: MIT
"""A Kafka sink with SASL OAUTHBEARER and librdkafka's builtin unsecured
JWT (enable.sasl.oauthbearer.unsecure.jwt: true), against the kafka_mock
process and a real PostgreSQL.

librdkafka reads sasl.oauthbearer.config only once the producer runs, and
before 2.2.0 it then crashes walcastd (SIGSEGV in its rdk:main thread, a
NULL mutex) when it renews the token: 10 s after one it could not make,
within a second after an extension it refuses, at 80 % of lifeSeconds
after a good one.  walcast reads the value first:

1. a value librdkafka cannot read: walcastd --check and a start fail with
   exit 78 and a message naming the sink, the property and the entry,
   never the value (a secret); so does an extension librdkafka refuses;
   a readable value is refused as well by a librdkafka older than 2.2.0
   (naming enable.sasl.oauthbearer.unsecure.jwt and the version), and
   accepted by a newer one.
2. walcastd running with a Kafka sink, reloaded to such a value: the
   reload is refused with that message, the sink in force goes on, and
   with changes flowing past the 10 s librdkafka would have taken to
   crash every change arrives in Kafka and is confirmed, walcastd alive.

Needs WC_KAFKA_MOCK (the kafka_mock binary) and kcat on PATH.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SECRET = "Zt7oauthSecretQw"
UNREADABLE = "principal=walcast bogus=%s" % SECRET
PROP_ERR = 'sink "kafka": Kafka property "sasl.oauthbearer.config": '
START_ERR = ('plugin "kafka" failed to start: Kafka property '
             '"sasl.oauthbearer.config": ')
JWT_PROP = '"enable.sasl.oauthbearer.unsecure.jwt"'
FIXED = 0x02020000  # the first librdkafka whose renewal does not crash


def librdkafka():
    """The version of the librdkafka walcastd loads (its soname)."""
    lib = ctypes.CDLL("librdkafka.so.1")
    lib.rd_kafka_version.restype = ctypes.c_int
    lib.rd_kafka_version_str.restype = ctypes.c_char_p
    return lib.rd_kafka_version(), lib.rd_kafka_version_str().decode()


def oauth_props(config):
    return {"security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER",
            "enable.sasl.oauthbearer.unsecure.jwt": "true",
            "sasl.oauthbearer.config": h.yq(config)}


def write_cfg(c, path, slot, boot, props=None):
    extra = ("sinks:\n" + h.kafka_sink_yaml(boot, props, topic="oauth-t"))
    return h.write_config(path, c.dsn(), slot, None, extra=extra)


def check_refused(what, rc, err, want_rc, words):
    check(rc == want_rc, "%s: exit %r, not %d\n%s" % (what, rc, want_rc, err))
    for w in words:
        check(w in err, "%s: %r is not in the message:\n%s" % (what, w, err))
    check(SECRET not in err, "%s: the secret shows:\n%s" % (what, err))


def case_check_and_start(c):
    mock = h.KafkaMock(c.tmp, brokers=1)
    version, version_str = librdkafka()
    h.log("librdkafka %s (0x%08x)" % (version_str, version))
    cfg = os.path.join(c.tmp, "oauth-bad.yaml")
    for label, value, words in (
            ("an entry librdkafka does not know", UNREADABLE,
             ["entry 2 is not one librdkafka knows",
              "write space-separated entries: principal=NAME"]),
            ("an extension librdkafka refuses",
             "principal=walcast extension_auth=%s" % SECRET,
             ["entry 2, an extension, is \"auth\", a key SASL reserves"]),
            ("no principal", "scope=%s" % SECRET,
             ["it has no principal= entry"])):
        h.log(label)
        write_cfg(c, cfg, "oauthbad", mock.bootstrap, oauth_props(value))
        r = h.run([h.binary("walcastd"), "-c", cfg, "--check"])
        check_refused("walcastd --check, " + label, r.returncode,
                      r.stderr + r.stdout, h.EX_CONFIG, [PROP_ERR] + words)
        h.log("  --check: %s" % r.stderr.strip())
        d = h.start_walcastd(cfg, c.tmp, name="oauth-start", ready=False)
        rc = d.wait(timeout=30)
        check_refused("walcastd, " + label, rc, d.stderr(), h.EX_CONFIG,
                      [START_ERR] + words)
        check("streaming" not in d.stderr(), "walcastd streamed with %s:\n%s"
              % (label, d.describe()))

    # a value librdkafka reads: its renewal crashes before 2.2.0
    write_cfg(c, cfg, "oauthbad", mock.bootstrap,
              oauth_props("principal=walcast lifeSeconds=5"))
    r = h.run([h.binary("walcastd"), "-c", cfg, "--check"])
    if version < FIXED:
        check_refused("walcastd --check, a good value", r.returncode,
                      r.stderr, h.EX_CONFIG,
                      ['sink "kafka": Kafka property ' + JWT_PROP,
                       "librdkafka %s crashes when it renews" % version_str,
                       "librdkafka 2.2.0 or later",
                       "sasl.mechanisms: SCRAM-SHA-512"])
        d = h.start_walcastd(cfg, c.tmp, name="oauth-start-good",
                             ready=False)
        rc = d.wait(timeout=30)
        check_refused("walcastd, a good value", rc, d.stderr(), h.EX_CONFIG,
                      [JWT_PROP])
    else:
        check(r.returncode == 0, "walcastd --check refused a good value "
              "with librdkafka %s:\n%s" % (version_str, r.stderr))
    h.log("  a good value: %s" % (r.stderr.strip() or r.stdout.strip()))
    # the slot, if the failed start made one
    c.sql("SELECT pg_drop_replication_slot(slot_name) FROM "
          "pg_replication_slots WHERE slot_name = 'oauthbad'")


def consume(boot, topic, timeout=60):
    r = h.run([h.kcat_path(), "-b", boot, "-C", "-t", topic, "-o",
               "beginning", "-e", "-J", "-q"], timeout=timeout)
    check(r.returncode == 0, "kcat -C %s failed: %s" % (topic, r.stderr))
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def case_reload_refused(c):
    mock = h.KafkaMock(c.tmp, brokers=1)
    c.sql("CREATE TABLE oauth_rows (id int PRIMARY KEY, v text)")
    cfg = os.path.join(c.tmp, "oauth-run.yaml")
    write_cfg(c, cfg, "oauthrun", mock.bootstrap)
    d = h.start_walcastd(cfg, c.tmp, name="oauth-run")
    c.sql("INSERT INTO oauth_rows VALUES (0, 'before-0')")

    write_cfg(c, cfg, "oauthrun", mock.bootstrap, oauth_props(UNREADABLE))
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reload refused" in d.stderr()
                 or d.poll() is not None, timeout=60,
                 what=lambda: "the refused reload\n" + d.describe())
    err = d.stderr()
    refusal = [l for l in err.splitlines() if "reload refused" in l]
    check(refusal and PROP_ERR in refusal[0]
          and "entry 2 is not one librdkafka knows" in refusal[0],
          "the refusal does not name the sink, property and entry:\n%s"
          % d.describe())
    check(SECRET not in err, "the secret shows:\n%s" % d.describe())
    h.log(refusal[0])

    # changes flowing through the sink in force, past the 10 s librdkafka
    # 2.0.2 took to crash on that value
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 14:
        n += 1
        c.sql("INSERT INTO oauth_rows VALUES (%d, 'after-%d')" % (n, n))
        check(d.poll() is None, "walcastd exited after the refused reload:\n"
              + d.describe())
        time.sleep(0.5)
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "oauthrun", target, [d], timeout=60,
                           what="the sink in force to confirm every change")
    values = [r.get("payload") or "" for r in consume(mock.bootstrap,
                                                      "oauth-t")]
    for i in range(n + 1):
        tag = "%s-%d" % ("before" if i == 0 else "after", i)
        check(sum(1 for v in values if '"%s"' % tag in v) >= 1,
              "row %d (%s) is not in Kafka (%d records)" % (i, tag,
                                                            len(values)))
    h.log("%d changes delivered through the sink in force" % (n + 1))
    d.stop()
    check(SECRET not in d.stderr(), "the secret shows:\n%s" % d.describe())
    c.sql("SELECT pg_drop_replication_slot('oauthrun')")


def test():
    c = h.Cluster()
    cases = h.Cases()
    cases.run("check and start refuse what librdkafka cannot read",
              case_check_and_start, c)
    cases.run("a reload to it is refused, the sink in force goes on",
              case_reload_refused, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
