# SPDX-License-Identifier: MIT
"""A TCP proxy in front of the kafka_mock process that answers CreateTopics.

librdkafka's mock cluster has no CreateTopics handler (2.0.2, and none up
to 2.15: src/rdkafka_mock_handlers.c lists no RD_KAFKAP_CreateTopics), so
a client's admin request waits for a controller that never offers it.
This proxy forwards every request to the mock and every answer back, with
three changes:

- ApiVersions answers also offer CreateTopics v0 to v2 and cap Metadata at
  v4 (both then have no flexible encoding, which keeps the rest simple);
- Metadata answers carry the proxy's ports instead of the mock's, so that
  the client's connections to "the brokers" come here too, and a
  controller that is one of the brokers (the mock says 0, which none is,
  so an admin request would wait for it even if the mock took it);
- CreateTopics requests are answered here: each topic is recorded as the
  client asked for it (name, partitions, replication factor, config
  entries, the request's timeout) and created in the mock with its
  partitions (`topic NAME PARTITIONS`), or refused as TOPIC_ALREADY_EXISTS
  when the mock has it (`exists`, or created before).

It checks what a client sends and what it does with the answers; it
cannot say whether a real broker would take the settings (a config name
a broker refuses, a replication factor above its broker count).
"""

import socket
import struct
import threading

API_METADATA = 3
API_APIVERSIONS = 18
API_CREATETOPICS = 19
TOPIC_ALREADY_EXISTS = 36


class Reader:
    def __init__(self, b, pos=0):
        self.b, self.pos = b, pos

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def uvarint(self):
        shift = v = 0
        while True:
            c = self.b[self.pos]
            self.pos += 1
            v |= (c & 0x7f) << shift
            if not c & 0x80:
                return v
            shift += 7


def put_string(s):
    if s is None:
        return struct.pack(">h", -1)
    e = s.encode()
    return struct.pack(">h", len(e)) + e


def read_frame(sock):
    head = b""
    while len(head) < 4:
        c = sock.recv(4 - len(head))
        if not c:
            return None
        head += c
    n = struct.unpack(">i", head)[0]
    body = b""
    while len(body) < n:
        c = sock.recv(n - len(body))
        if not c:
            return None
        body += c
    return body


def frame(body):
    return struct.pack(">i", len(body)) + body


class AdminProxy:
    def __init__(self, mock):
        self.mock = mock
        self.lock = threading.Lock()
        self.requests = []   # dicts, one per topic asked for
        self.created = set()
        self.exists = set()  # topics made in the mock by the test
        host, port = mock.bootstrap.split(",")[0].rsplit(":", 1)
        self.upstream = (host, int(port))
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopped = True
        self.lsock.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, client):
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        pending = {}  # correlation id -> (api key, version)
        wlock = threading.Lock()

        def send(sock, data):
            with wlock:
                sock.sendall(data)

        def answers():
            try:
                while True:
                    body = read_frame(up)
                    if body is None:
                        break
                    corr = struct.unpack_from(">i", body)[0]
                    key, ver = pending.pop(corr, (None, None))
                    if key == API_APIVERSIONS:
                        body = self._apiversions(body, ver)
                    elif key == API_METADATA:
                        body = self._metadata(body, ver)
                    send(client, frame(body))
            except OSError:
                pass
            client.close()

        threading.Thread(target=answers, daemon=True).start()
        try:
            while True:
                body = read_frame(client)
                if body is None:
                    break
                key, ver, corr = struct.unpack_from(">hhi", body)
                if key == API_CREATETOPICS:
                    send(client, frame(self._createtopics(body, ver, corr)))
                    continue
                pending[corr] = (key, ver)
                up.sendall(frame(body))
        except OSError:
            pass
        up.close()

    # ApiVersions: CreateTopics 0..2 offered, Metadata capped at v4
    def _apiversions(self, body, ver):
        r = Reader(body, 4)
        err = r.take(">h")
        if err:
            return body
        flexible = ver >= 3
        n = r.uvarint() - 1 if flexible else r.take(">i")
        keys = []
        for _ in range(n):
            k, lo, hi = r.take(">hhh")
            if flexible:
                r.uvarint()  # tagged fields: none here
            if k == API_METADATA:
                hi = min(hi, 4)
            if k != API_CREATETOPICS:
                keys.append((k, lo, hi))
        keys.append((API_CREATETOPICS, 0, 2))
        rest = body[r.pos:]
        out = body[:4] + struct.pack(">h", 0)
        if flexible:
            out += bytes([len(keys) + 1])
            assert len(keys) + 1 < 128
        else:
            out += struct.pack(">i", len(keys))
        for k, lo, hi in keys:
            out += struct.pack(">hhh", k, lo, hi)
            if flexible:
                out += b"\x00"
        return out + rest

    # Metadata v0..v4: the brokers' ports made the proxy's
    def _metadata(self, body, ver):
        assert ver <= 4, "Metadata v%d: capped at 4" % ver
        b = bytearray(body)
        r = Reader(b, 4)
        if ver >= 3:
            r.take(">i")  # throttle_time_ms
        nodes = []
        for _ in range(r.take(">i")):
            nodes.append(r.take(">i"))
            r.string()
            at = r.pos
            port = r.take(">i")
            if port == self.upstream[1]:
                struct.pack_into(">i", b, at, self.port)
            if ver >= 1:
                r.string()  # rack
        if ver >= 1:
            if ver >= 2:
                r.string()  # cluster_id
            # the mock names controller 0, which no broker is (2.0.2)
            if nodes and r.take(">i") not in nodes:
                struct.pack_into(">i", b, r.pos - 4, nodes[0])
        return bytes(b)

    def _createtopics(self, body, ver, corr):
        assert ver <= 2, "CreateTopics v%d: offered up to 2" % ver
        r = Reader(body, 8)
        r.string()  # client_id
        asked = []
        for _ in range(r.take(">i")):
            name = r.string()
            partitions = r.take(">i")
            replication = r.take(">h")
            assignments = []
            for _ in range(r.take(">i")):
                p = r.take(">i")
                assignments.append((p, [r.take(">i")
                                        for _ in range(r.take(">i"))]))
            config = {}
            for _ in range(r.take(">i")):
                k = r.string()
                config[k] = r.string()
            asked.append({"name": name, "partitions": partitions,
                          "replication_factor": replication,
                          "assignments": assignments, "config": config})
        timeout = r.take(">i")
        validate_only = bool(r.take(">b")) if ver >= 1 else False
        out = struct.pack(">i", corr)
        if ver >= 2:
            out += struct.pack(">i", 0)
        out += struct.pack(">i", len(asked))
        for t in asked:
            t["timeout_ms"] = timeout
            t["validate_only"] = validate_only
            with self.lock:
                self.requests.append(t)
                known = t["name"] in self.created or t["name"] in self.exists
                if not known and not validate_only:
                    parts = t["partitions"] if t["partitions"] > 0 else 1
                    self.mock.cmd("topic %s %d" % (t["name"], parts))
                    self.created.add(t["name"])
            out += put_string(t["name"])
            out += struct.pack(">h", TOPIC_ALREADY_EXISTS if known else 0)
            if ver >= 1:
                out += put_string("Topic '%s' already exists." % t["name"]
                                  if known else None)
        return out

    def asked(self, name=None):
        with self.lock:
            return [t for t in self.requests
                    if name is None or t["name"] == name]
