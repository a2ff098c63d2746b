"""Cross-thread robustness: work one worker thread causes on behalf of another.

`watch` is the sharpest case: every worker formats log lines for watchers that live on other workers, and
watchers come and go while that happens. The scenario below (four watchers — two reading for the whole run,
two opening and closing over and over — while eight connections set/get on `-t 4`) used to crash the server
(a watcher woken through another worker's event base) or leave every worker spinning. It must run for the
whole time with every request answered, watchers must get their lines, and a fresh connection must be
served at the end.

Runs CACHET_WATCH_SECONDS (default 20) seconds; `make stress` runs it longer.
"""

import os
import socket
import threading
import time
import unittest

import harness

SECONDS = float(os.environ.get("CACHET_WATCH_SECONDS", "20"))
READ_TIMEOUT = 10.0   # one reply (or a watcher's next line) taking this long is a stall: the test fails


class Failure:
    """The first failure any thread saw (threads cannot fail the test themselves)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.text = None

    def set(self, text):
        with self.lock:
            if self.text is None:
                self.text = text


def recv_until(sock, buf, suffix):
    """Reads until `buf` ends with `suffix`; returns the bytes (socket timeout = stall)."""
    while not buf.endswith(suffix):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"server closed the connection (had {bytes(buf[-100:])!r})")
        buf += chunk
        if len(buf) > 1 << 20:
            raise AssertionError(f"1 MB without {suffix!r}: {bytes(buf[:300])!r}")
    out = bytes(buf)
    buf.clear()
    return out


def start_watch(sock):
    """Sends `watch` and reads its `OK` line (log lines may follow in the same read)."""
    sock.sendall(b"watch fetchers mutations\r\n")
    got = b""
    while b"\r\n" not in got:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed a connection that asked to watch")
        got += chunk
    if not got.startswith(b"OK\r\n"):
        raise AssertionError(f"watch answered {got[:100]!r}")


def loader(server, n, stop, failure, counts):
    """Pipelined sets and gets of keys that watchers see (16 requests per round trip)."""
    s = None
    try:
        s = server.raw_connect(timeout=READ_TIMEOUT)
        buf = bytearray()
        done = 0
        i = 0
        while not stop.is_set():
            batch = []
            for j in range(8):
                k = f"c{n}:{(i + j) % 500}"
                v = f"{n}-{i + j}".encode()
                batch.append(b"set %s 0 0 %d\r\n%s\r\n" % (k.encode(), len(v), v))
                batch.append(b"get %s\r\n" % k.encode())
            s.sendall(b"".join(batch) + b"mn\r\n")
            reply = recv_until(s, buf, b"MN\r\n")
            if reply.count(b"STORED\r\n") != 8 or reply.count(b"END\r\n") != 8:
                failure.set(f"loader {n}: unexpected reply {reply[:200]!r}")
                return
            done += 16
            i += 8
        counts[n] = done
    except Exception as e:  # noqa: BLE001 — any error in a thread is the test's failure
        failure.set(f"loader {n}: {e!r}")
    finally:
        if s is not None:
            s.close()


def steady_watcher(server, n, stop, failure, seen):
    """One watcher reading for the whole run."""
    s = None
    try:
        s = server.raw_connect(timeout=READ_TIMEOUT)
        start_watch(s)
        got = 0
        while not stop.is_set():
            chunk = s.recv(65536)
            if not chunk:
                failure.set(f"watcher {n}: server closed the watch connection")
                return
            got += chunk.count(b"\n")
            if b"type=item_get" in chunk:
                seen.add("item_get")
            if b"type=item_store" in chunk:
                seen.add("item_store")
        seen.add(f"lines{n}:{got}")
    except Exception as e:  # noqa: BLE001
        failure.set(f"watcher {n}: {e!r}")
    finally:
        if s is not None:
            s.close()


def churning_watcher(server, n, stop, failure, cycles):
    """Opens a watcher, reads a few lines, closes it, again and again (its lines are in flight)."""
    while not stop.is_set():
        s = None
        try:
            s = server.raw_connect(timeout=READ_TIMEOUT)
            start_watch(s)
            lines = 0
            while lines < 20 and not stop.is_set():
                chunk = s.recv(65536)
                if not chunk:
                    failure.set(f"churning watcher {n}: server closed the watch connection")
                    return
                lines += chunk.count(b"\n")
            # A reset while lines are still being queued for it is the hardest way to leave.
            if cycles[n] % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            cycles[n] += 1
        except Exception as e:  # noqa: BLE001
            failure.set(f"churning watcher {n}: {e!r}")
            return
        finally:
            if s is not None:
                s.close()


class WatchUnderLoad(unittest.TestCase):
    def run_scenario(self, threads):
        server = harness.Server(harness.cachet_bin(), extra=["-t", str(threads)]).start()
        self.addCleanup(server.stop)
        stop = threading.Event()
        failure = Failure()
        counts = [0] * 8
        cycles = [0] * 2
        seen = set()
        workers = [threading.Thread(target=loader, args=(server, n, stop, failure, counts)) for n in range(8)]
        workers += [threading.Thread(target=steady_watcher, args=(server, n, stop, failure, seen)) for n in range(2)]
        workers += [threading.Thread(target=churning_watcher, args=(server, n, stop, failure, cycles))
                    for n in range(2)]
        for t in workers:
            t.start()
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline and failure.text is None and server.alive():
            time.sleep(0.2)
        stop.set()
        for t in workers:
            t.join(READ_TIMEOUT + 5)
        self.assertTrue(server.alive(), f"server died: {server.stderr()[-2000:]!r}")
        self.assertIsNone(failure.text)
        self.assertFalse(any(t.is_alive() for t in workers), "a client thread is stuck")
        # Every loader made progress, the watchers saw both kinds of lines, the churners cycled.
        self.assertTrue(all(c > 0 for c in counts), f"requests per loader: {counts}")
        self.assertTrue({"item_get", "item_store"} <= seen, f"watchers saw: {sorted(seen)}")
        self.assertTrue(all(c > 0 for c in cycles), f"watcher open/close cycles: {cycles}")
        # A fresh connection is served, and the server let go of every watcher.
        with server.connect() as c:
            self.assertEqual(c.roundtrip(b"set fresh 0 0 2\r\nok\r\nget fresh\r\n"),
                             b"STORED\r\nVALUE fresh 0 2\r\nok\r\nEND\r\n")
            harness.wait_for(lambda: dict(c.stats())["log_watchers"] == "0", what="log_watchers back to 0")
        print(f"\n  -t {threads}: {sum(counts) / SECONDS:.0f} requests/s for {SECONDS:.0f} s, "
              f"watcher cycles {cycles}", flush=True)

    def test_watch_under_load_t4(self):
        self.run_scenario(4)

    def test_watch_under_load_t2(self):
        self.run_scenario(2)


if __name__ == "__main__":
    unittest.main()
