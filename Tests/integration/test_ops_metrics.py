"""`-o metrics_port`: the Prometheus page. Validated by `PromTextValidator` below, which follows the text exposition
format 0.0.4 and promtool's lint rules (Debian's `prometheus` package, which ships promtool, is ~96 MB installed
with a web UI's JavaScript — too much for CI to install for one check). The values agree with `stats`,
`stats slabs`, `stats items` and `stats settings`; keys and values never appear; garbage, oversize requests,
slowloris clients and a flood of idle connections on the metrics port leave the cache port serving.
"""

import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Server, base_args, cachet_bin, free_port, free_ports, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class PromTextValidator:
    """Parses a page; `errors` lists every rule it breaks (empty = valid)."""

    def __init__(self, text):
        self.errors = []
        self.samples = {}     # (name, frozenset(labels.items())) -> float
        self.types, self.helps = {}, {}
        self._parse(text)

    def err(self, n, msg):
        self.errors.append(f"line {n}: {msg}")

    @staticmethod
    def parse_labels(s, pos):
        """From just after '{': returns (dict, position after '}') or raises ValueError."""
        labels = {}
        while True:
            if s[pos] == "}":
                return labels, pos + 1
            m = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"").match(s, pos)
            if not m:
                raise ValueError(f"bad label at {s[pos:pos + 20]!r}")
            name, pos = m.group(1), m.end()
            value = []
            while s[pos] != '"':
                if s[pos] == "\\":
                    nxt = s[pos + 1]
                    if nxt not in '\\"n':
                        raise ValueError(f"bad escape \\{nxt}")
                    value.append("\n" if nxt == "n" else nxt)
                    pos += 2
                else:
                    if s[pos] == "\n":
                        raise ValueError("raw newline in a label value")
                    value.append(s[pos])
                    pos += 1
            pos += 1
            if name in labels:
                raise ValueError(f"label {name} twice")
            if name.startswith("__"):
                raise ValueError(f"reserved label name {name}")
            labels[name] = "".join(value)
            if s[pos] == ",":
                pos += 1
            elif s[pos] != "}":
                raise ValueError("expected , or }")

    @staticmethod
    def parse_value(v):
        if v in ("NaN", "+Inf", "-Inf", "Inf"):
            return float(v.replace("Inf", "inf").replace("NaN", "nan"))
        if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", v):
            raise ValueError(f"bad value {v!r}")
        return float(v)

    def _parse(self, text):
        if not text.endswith("\n"):
            self.err(0, "the page must end with a newline")
        finished, current = set(), None
        for n, line in enumerate(text.split("\n")[:-1], 1):
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not NAME.match(name):
                        self.err(n, f"bad metric name {name!r}")
                    if name in finished or (name in self.samples_names() and name != current):
                        self.err(n, f"{parts[1]} for {name} after its samples")
                    book = self.helps if parts[1] == "HELP" else self.types
                    if name in book:
                        self.err(n, f"second {parts[1]} for {name}")
                    value = parts[3] if len(parts) > 3 else ""
                    if parts[1] == "TYPE" and value not in TYPES:
                        self.err(n, f"unknown type {value!r}")
                    if parts[1] == "HELP" and not value.strip():
                        self.err(n, f"empty HELP for {name}")
                    book[name] = value
                continue
            if not line.strip():
                self.err(n, "blank line")
                continue
            m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            if not m:
                self.err(n, f"bad sample line {line!r}")
                continue
            name, pos = m.group(0), m.end()
            labels = {}
            try:
                if pos < len(line) and line[pos] == "{":
                    labels, pos = self.parse_labels(line, pos + 1)
                if pos >= len(line) or line[pos] != " ":
                    raise ValueError("expected a space before the value")
                fields = line[pos + 1:].split(" ")
                if len(fields) not in (1, 2):
                    raise ValueError("value [timestamp] expected")
                value = self.parse_value(fields[0])
            except (ValueError, IndexError) as e:
                self.err(n, f"{e}: {line!r}")
                continue
            if name != current:
                if current is not None:
                    finished.add(current)
                if name in finished:
                    self.err(n, f"samples of {name} are not contiguous")
                current = name
            key = (name, frozenset(labels.items()))
            if key in self.samples:
                self.err(n, f"duplicate sample {name}{labels}")
            self.samples[key] = value
            # promtool check metrics' lint rules
            t = self.types.get(name)
            if t is None:
                self.err(n, f"{name} has no TYPE")
            if name not in self.helps:
                self.err(n, f"{name} has no HELP")
            if t == "counter" and not name.endswith("_total"):
                self.err(n, f"counter {name} should end in _total")
            if t != "counter" and name.endswith("_total"):
                self.err(n, f"non-counter {name} ends in _total")
            if t == "counter" and (value < 0 or math.isnan(value)):
                self.err(n, f"counter {name} is {value}")
            if name != name.lower():
                self.err(n, f"{name} is not snake_case")

    def samples_names(self):
        return {k[0] for k in self.samples}

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())))

    def labels_of(self, name):
        return [dict(k[1]) for k in self.samples if k[0] == name]


class ValidatorSelfCheck(unittest.TestCase):
    def test_rejects_what_promtool_rejects(self):
        good = '# HELP a_total x\n# TYPE a_total counter\na_total{l="q\\"\\n\\\\"} 1\n'
        self.assertEqual(PromTextValidator(good).errors, [])
        bad = {
            "no trailing newline": "# HELP a x\n# TYPE a gauge\na 1",
            "counter without _total": "# HELP a x\n# TYPE a counter\na 1\n",
            "bad escape": '# HELP a x\n# TYPE a gauge\na{l="\\q"} 1\n',
            "duplicate": "# HELP a x\n# TYPE a gauge\na 1\na 2\n",
            "not contiguous": "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na{x=\"1\"} 1\nb 1\na{x=\"2\"} 1\n",
            "no TYPE": "# HELP a x\na 1\n",
            "bad value": "# HELP a x\n# TYPE a gauge\na one\n",
            "bad name": "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",
            "unknown type": "# HELP a x\n# TYPE a info\na 1\n",
        }
        for why, text in bad.items():
            with self.subTest(why):
                self.assertTrue(PromTextValidator(text).errors, why)


def http_get(port, path="/metrics", method="GET", timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return read_all(s, timeout)


def read_all(s, timeout=10, reset_ok=False):
    """Everything until the server closes; with reset_ok a reset counts as a close (the server closed a
    socket whose input it had not read, which the kernel signals with RST)."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            if not reset_ok:
                raise
            return data
        if not chunk:
            return data
        data += chunk


def body_of(reply):
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.decode(), body


class MetricsPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cachet-metrics-")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", "key.pem", "-out", "chain.pem"], cwd=cls.dir, check=True,
                       capture_output=True, timeout=60)
        cls.port, cls.plain, cls.mport = free_ports(3)
        cls.srv = Server(cachet_bin(), port=cls.plain, args=[
            "-u", "root", "-U", "0", "-p", str(cls.port), "-t", "2",
            "-l", f"127.0.0.1:{cls.port},notls:127.0.0.1:{cls.plain}", "-Z",
            "-o", f"ssl_chain_cert={cls.dir}/chain.pem,ssl_key={cls.dir}/key.pem,metrics_port={cls.mport}"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.dir, True)

    def scrape(self):
        head, body = body_of(http_get(self.mport))
        self.assertTrue(head.startswith("HTTP/1.1 200 OK\r\n"), head)
        self.assertIn("Content-Type: text/plain; version=0.0.4; charset=utf-8", head)
        length = int(re.search(r"Content-Length: (\d+)", head).group(1))
        self.assertEqual(length, len(body))
        page = PromTextValidator(body.decode())
        self.assertEqual(page.errors, [], "\n".join(page.errors[:20]))
        # And Prometheus's own checker (Scripts/fetch-promtool, run by `make test`, extracts it).
        tool = shutil.which("promtool") or os.path.join(ROOT, ".build", "tools", "promtool")
        self.assertTrue(os.access(tool, os.X_OK), "promtool missing: run Scripts/fetch-promtool")
        check = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True, timeout=60)
        self.assertEqual(check.returncode, 0, (check.stdout + check.stderr).decode(errors="replace"))
        return page, body

    def test_valid_and_agrees_with_stats(self):
        secret_key, secret_value = b"topsecretkey_4711", b"confidential-value-0815"
        with self.srv.connect() as c:
            c.roundtrip(b"set %s 0 0 %d\r\n%s\r\n" % (secret_key, len(secret_value), secret_value))
            c.roundtrip(b"set big 0 0 5000\r\n" + b"b" * 5000 + b"\r\n")
            c.roundtrip(b"get %s nothere\r\n" % secret_key)
            c.roundtrip(b"mn\r\n")
        # A failed TLS handshake, so a TLS counter moves.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"\x16\x03\x01\x00\x05garbage-not-a-client-hello" * 4)
            read_all(s, 5)
        with self.srv.connect() as c:
            wait_for(lambda: dict(c.stats()).get("ssl_handshake_errors") == "1", timeout=5, what="handshake error counted")
            page, body = self.scrape()
            stats, settings = dict(c.stats()), dict(c.stats("settings"))
            slabs, items = dict(c.stats("slabs")), dict(c.stats("items"))
        for leak in (secret_key, secret_value, b"nothere"):
            self.assertNotIn(leak, body)
        self.assertEqual(page.get("cachet_items"), float(stats["curr_items"]))
        self.assertEqual(page.get("cachet_items_total"), float(stats["total_items"]))
        self.assertEqual(page.get("cachet_bytes"), float(stats["bytes"]))
        self.assertEqual(page.get("cachet_limit_bytes"), float(stats["limit_maxbytes"]))
        self.assertEqual(page.get("cachet_commands_total", command="set"), float(stats["cmd_set"]))
        self.assertEqual(page.get("cachet_commands_total", command="get"), float(stats["cmd_get"]))
        self.assertEqual(page.get("cachet_command_results_total", command="get", result="hit"), float(stats["get_hits"]))
        self.assertEqual(page.get("cachet_command_results_total", command="get", result="miss"), float(stats["get_misses"]))
        self.assertEqual(page.get("cachet_threads"), 2.0)
        self.assertEqual(page.get("cachet_ssl_handshake_errors_total"), 1.0)
        for name in ("handshakes", "resumed_handshakes", "handshake_timeouts", "plaintext_rejected",
                     "verify_name_failures", "handshakes_deferred"):
            self.assertEqual(page.get(f"cachet_ssl_{name}_total"), float(stats[f"ssl_{name}"]), name)
        self.assertEqual(page.get("cachet_ssl_cert_not_after_timestamp_seconds"), float(stats["ssl_cert_not_after"]))
        serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", f"{self.dir}/chain.pem"],
                                capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
        self.assertEqual(page.labels_of("cachet_ssl_cert_info"), [{"serial": serial, "subject": "CN=localhost"}])
        # per slab class
        classes = sorted({k.split(":")[0] for k in slabs if ":" in k})
        self.assertGreaterEqual(len(classes), 2)
        for cid in classes:
            self.assertEqual(page.get("cachet_slab_chunks", **{"class": cid, "state": "used"}),
                             float(slabs[f"{cid}:used_chunks"]))
            self.assertEqual(page.get("cachet_slab_chunk_size_bytes", **{"class": cid}), float(slabs[f"{cid}:chunk_size"]))
            self.assertEqual(page.get("cachet_slab_commands_total", **{"class": cid, "counter": "cmd_set"}),
                             float(slabs[f"{cid}:cmd_set"]))
            self.assertEqual(page.get("cachet_class_items", **{"class": cid}), float(items[f"items:{cid}:number"]))
            # The LRU maintainer moves items between segments at any time: the segments of one page add up.
            self.assertEqual(sum(page.get("cachet_class_lru_items", **{"class": cid, "segment": seg})
                                 for seg in ("hot", "warm", "cold", "temp")), float(items[f"items:{cid}:number"]))
        # settings as labels
        info = page.labels_of("cachet_settings_info")
        self.assertEqual(len(info), 1)
        for k, v in settings.items():
            if LABEL.match(k):
                self.assertEqual(info[0].get(k), v, k)

    def test_head_root_and_errors(self):
        head, body = body_of(http_get(self.mport, method="HEAD"))
        self.assertTrue(head.startswith("HTTP/1.1 200 OK"))
        self.assertEqual(body, b"")
        self.assertTrue(http_get(self.mport, "/").startswith(b"HTTP/1.1 200 OK"))
        self.assertTrue(http_get(self.mport, "/keys").startswith(b"HTTP/1.1 404 "))
        self.assertTrue(http_get(self.mport, method="POST").startswith(b"HTTP/1.1 405 "))
        with socket.create_connection(("127.0.0.1", self.mport), timeout=10) as s:
            s.sendall(b"\x00\xff\xfe garbage \x01\r\n\r\n")
            self.assertTrue(read_all(s).startswith(b"HTTP/1.1 400 "))
        with socket.create_connection(("127.0.0.1", self.mport), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX-Fill: " + b"a" * 9000)
            self.assertTrue(read_all(s).startswith(b"HTTP/1.1 431 "))
        with socket.create_connection(("127.0.0.1", self.mport), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(read_all(s).startswith(b"HTTP/1.1 200 "))

    def cache_roundtrip_ms(self):
        t = time.monotonic()
        with self.srv.connect() as c:
            self.assertEqual(c.roundtrip(b"set probe 0 0 1\r\np\r\nget probe\r\n"),
                             b"STORED\r\nVALUE probe 0 1\r\np\r\nEND\r\n")
        return (time.monotonic() - t) * 1000

    def test_slowloris_and_flood_leave_cache_port_alone(self):
        # 40 connections (over the 32 cap), each sending half a request line and then nothing.
        socks = []
        try:
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", self.mport), timeout=10)
                s.sendall(b"GET /metr")
                socks.append(s)
            # The ones over the cap are answered 503 and closed at once.
            t = time.monotonic()
            for s in socks[32:]:
                reply = read_all(s, 5, reset_ok=True)
                self.assertTrue(reply == b"" or reply.startswith(b"HTTP/1.1 503 "), reply)
            self.assertLess(time.monotonic() - t, 2, "connections over the cap are closed at once, not timed out")
            # The cache port is unaffected while they hang.
            self.assertLess(max(self.cache_roundtrip_ms() for _ in range(20)), 1000)
            # The slow ones are cut off by the 5-second request deadline (closed without an answer).
            t = time.monotonic()
            for s in socks[:32]:
                self.assertEqual(read_all(s, 10, reset_ok=True), b"")
            self.assertLess(time.monotonic() - t, 8)
        finally:
            for s in socks:
                s.close()
        # Afterwards scrapes work again.
        self.scrape()

    def test_trickle_does_not_extend_the_deadline(self):
        with socket.create_connection(("127.0.0.1", self.mport), timeout=10) as s:
            t = time.monotonic()
            closed = False
            while time.monotonic() - t < 9:
                try:
                    s.sendall(b"x")
                except OSError:
                    closed = True
                    break
                s.settimeout(0.5)
                try:
                    if s.recv(100) == b"":
                        closed = True
                        break
                except socket.timeout:
                    pass
            self.assertTrue(closed, "a byte every 0.5 s kept the connection open past the 5-second deadline")
            self.assertLess(time.monotonic() - t, 7.5)


class MetricsOptions(unittest.TestCase):
    def test_off_by_default_and_loopback_when_on(self):
        port, mport = free_ports(2)
        srv = Server(cachet_bin(), port=port).start()
        self.addCleanup(srv.stop)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", mport), timeout=2).close()
        on = Server(cachet_bin(), [f"-o", f"metrics_port={mport}"]).start()
        self.addCleanup(on.stop)
        with open("/proc/net/tcp") as f:
            listening = [ln.split()[1] for ln in f.readlines()[1:] if ln.split()[3] == "0A"]
        self.assertIn(f"0100007F:{mport:04X}", listening, "metrics listener on 127.0.0.1")
        self.assertNotIn(f"00000000:{mport:04X}", listening)

    def test_bad_values_and_port_in_use(self):
        for v in ("0", "70000", "abc", ""):
            with self.subTest(v):
                r = subprocess.run([cachet_bin(), *base_args(free_port()), "-o", f"metrics_port={v}"],
                                   capture_output=True, timeout=10)
                self.assertEqual(r.returncode, 1)
                self.assertIn(b"could not parse argument to metrics_port", r.stderr)
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        r = subprocess.run([cachet_bin(), *base_args(free_port()), "-o", f"metrics_port={taken}"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 71)
        self.assertIn(f"failed to listen on metrics address 127.0.0.1:{taken}: Address already in use".encode(), r.stderr)
        r = subprocess.run([cachet_bin(), *base_args(free_port()), "-o", "metrics_addr=::1", "-h"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()
