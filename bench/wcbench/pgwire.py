# SPDX-License-Identifier: MIT
"""A minimal PostgreSQL frontend/backend protocol (v3) client: trust
authentication, simple queries, text results.  Enough to drive the
benchmark's cluster without spawning psql for every poll."""

import socket
import struct


class PgError(Exception):
    pass


class PgConn:
    def __init__(self, host, port, user="postgres", dbname="postgres",
                 timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.rf = self.sock.makefile("rb")
        params = b""
        for k, v in (("user", user), ("database", dbname),
                     ("application_name", "walcast-bench")):
            params += k.encode() + b"\0" + v.encode() + b"\0"
        body = struct.pack("!I", 196608) + params + b"\0"
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        while True:
            t, payload = self._recv()
            if t == b"R":
                code = struct.unpack("!I", payload[:4])[0]
                if code != 0:
                    raise PgError("server asks for authentication method %d;"
                                  " the bench cluster uses trust" % code)
            elif t == b"E":
                raise PgError(self._error_text(payload))
            elif t == b"Z":
                break

    def _recv(self):
        head = self.rf.read(5)
        if len(head) < 5:
            raise PgError("connection closed by the server")
        n = struct.unpack("!I", head[1:])[0] - 4
        payload = self.rf.read(n) if n else b""
        if len(payload) < n:
            raise PgError("connection closed by the server")
        return head[:1], payload

    @staticmethod
    def _error_text(payload):
        fields = {}
        for part in payload.split(b"\0"):
            if part:
                fields[part[:1]] = part[1:].decode("utf-8", "replace")
        msg = "%s: %s" % (fields.get(b"S", "ERROR"), fields.get(b"M", "?"))
        if b"D" in fields:
            msg += " (%s)" % fields[b"D"]
        return msg

    def query(self, sql):
        """Runs sql (one or more statements); returns the rows of the last
        result that had rows, as lists of str (None for NULL)."""
        data = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!I", len(data) + 4) + data)
        rows, cur, err = [], None, None
        while True:
            t, p = self._recv()
            if t == b"T":
                cur = []
            elif t == b"D":
                ncol = struct.unpack("!H", p[:2])[0]
                off, row = 2, []
                for _ in range(ncol):
                    ln = struct.unpack("!i", p[off:off + 4])[0]
                    off += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(p[off:off + ln].decode("utf-8"))
                        off += ln
                cur.append(row)
            elif t == b"C":
                if cur is not None:
                    rows = cur
                cur = None
            elif t == b"E":
                err = self._error_text(p)
            elif t == b"Z":
                break
            # N (notice), S (parameter), A (notify), I (empty): ignored
        if err:
            raise PgError(err + "\n  in: " + sql[:300])
        return rows

    def value(self, sql):
        rows = self.query(sql)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise PgError("expected one value from %r, got %r" % (sql, rows))
        return rows[0][0]

    def close(self):
        try:
            self.sock.sendall(b"X" + struct.pack("!I", 4))
        except OSError:
            pass
        try:
            self.rf.close()
            self.sock.close()
        except OSError:
            pass
