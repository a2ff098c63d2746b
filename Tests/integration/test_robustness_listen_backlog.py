"""`-b <n>`: every listening socket (TCP per address, unix socket) is listened with the backlog `-b`
gives (default 1024), which the kernel caps at net.core.somaxconn — as memcached does. Out of file
descriptors (`-o no_maxconns_fast` at `-c`), the listeners pause with a backlog of 0 and listen with
`-b` again once a connection closed.

The backlog is read back from the kernel, not from `stats settings`: sock_diag (the netlink
interface `ss` uses) reports a listening socket's maximum accept queue (`ss -l` shows it as Send-Q).
Only the server's own sockets are looked at (matched by socket inode from /proc/<pid>/fd).
Stdlib only; passes with CACHET_BIN=/usr/bin/memcached too (that run validates the test).
"""

import os
import select
import shutil
import socket
import struct
import tempfile
import time
import unittest

from harness import Server, HarnessError, cachet_bin, memcached_bin, wait_for

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10
UDIAG_SHOW_RQLEN = 0x10
UNIX_DIAG_RQLEN = 4


def somaxconn():
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


def socket_inodes(pid):
    """Inodes of every socket the process `pid` holds open."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _dump(request):
    """Send one sock_diag dump request; yield each reply message's payload."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(5)
        nl.send(struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY,
                            NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + request)
        while True:
            data = nl.recv(1 << 16)
            off = 0
            while off + 16 <= len(data):
                length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
                if mtype == NLMSG_DONE:
                    return
                if mtype == NLMSG_ERROR:
                    err = struct.unpack_from("=i", data, off + 16)[0]
                    raise HarnessError(f"sock_diag dump failed: errno {-err}")
                yield data[off + 16:off + length]
                off += (length + 3) & ~3


def tcp_listen_backlogs(pid):
    """{(family, port): max accept queue} for the TCP sockets `pid` listens on."""
    return {k: backlog for k, (_queued, backlog) in tcp_listen_queues(pid).items()}


def tcp_listen_queues(pid):
    """{(family, port): (connections waiting to be accepted, max accept queue)} for `pid`'s TCP listeners."""
    mine = socket_inodes(pid)
    out = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        # inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid (48 bytes).
        req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN) + bytes(48)
        for msg in _dump(req):
            # inet_diag_msg: family, state, timer, retrans, sockid (sport big-endian first), expires,
            # rqueue (current queue), wqueue (maximum queue for a listener), uid, inode.
            sport = struct.unpack_from("!H", msg, 4)[0]
            _expires, rqueue, wqueue, _uid, inode = struct.unpack_from("=IIIII", msg, 52)
            if inode in mine:
                out[(family, sport)] = (rqueue, wqueue)
    return out


def unix_listen_backlogs(pid):
    """{inode: max accept queue} for the unix sockets `pid` listens on."""
    mine = socket_inodes(pid)
    out = {}
    # unix_diag_req: family, protocol, pad, states, ino, show, cookie[2].
    req = struct.pack("=BBHIII8x", socket.AF_UNIX, 0, 0, 1 << TCP_LISTEN, 0, UDIAG_SHOW_RQLEN)
    for msg in _dump(req):
        # unix_diag_msg: family, type, state, pad, ino, cookie[2] (16 bytes), then attributes.
        inode = struct.unpack_from("=I", msg, 4)[0]
        off = 16
        while off + 4 <= len(msg):
            alen, atype = struct.unpack_from("=HH", msg, off)
            if alen < 4:
                break
            if atype == UNIX_DIAG_RQLEN and inode in mine:
                out[inode] = struct.unpack_from("=II", msg, off + 4)[1]
            off += (alen + 3) & ~3
    return out


class ListenBacklog(unittest.TestCase):
    def tcp_backlogs(self, binary, extra):
        srv = Server(binary, extra).start()
        try:
            got = tcp_listen_backlogs(srv.pid)
            with srv.connect() as c:
                reported = dict(c.stats("settings")).get("tcp_backlog")
        finally:
            srv.stop()
        self.assertEqual(list(got), [(socket.AF_INET, srv.port)],
                         f"{srv.argv_str()}: expected one IPv4 listener on {srv.port}, kernel shows {got}")
        return got[(socket.AF_INET, srv.port)], reported

    def test_tcp_backlog_is_what_b_says(self):
        cap = somaxconn()
        # (extra args, backlog -b asks for): the default, a small one, one past the kernel's cap.
        for extra, asked in (([], 1024), (["-b", "5"], 5), (["-b", str(cap + 100)], cap + 100)):
            with self.subTest(args=extra):
                got, reported = self.tcp_backlogs(cachet_bin(), extra)
                self.assertEqual(got, min(asked, cap), f"listen backlog for {extra or 'default'}")
                self.assertEqual(reported, str(asked), "stats settings tcp_backlog echoes -b")

    def test_same_backlog_as_memcached(self):
        for extra in (["-b", "5"], ["-b", "0"], []):
            with self.subTest(args=extra):
                self.assertEqual(self.tcp_backlogs(cachet_bin(), extra),
                                 self.tcp_backlogs(memcached_bin(), extra))

    def test_every_listener_of_l_gets_the_backlog(self):
        ports = []
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            ports.append(s)
        nums = [s.getsockname()[1] for s in ports]
        for s in ports:
            s.close()
        srv = Server(cachet_bin(), args=["-u", "root", "-U", "0", "-b", "9",
                                         "-l", f"127.0.0.1:{nums[0]},127.0.0.1:{nums[1]}"])
        srv.port = nums[0]
        srv.start()
        try:
            got = tcp_listen_backlogs(srv.pid)
        finally:
            srv.stop()
        self.assertEqual(got, {(socket.AF_INET, nums[0]): 9, (socket.AF_INET, nums[1]): 9})

    def test_unix_socket_backlog(self):
        d = tempfile.mkdtemp(prefix="cachet-bl-")
        self.addCleanup(shutil.rmtree, d, True)
        cap = somaxconn()
        for extra, want in (([], min(1024, cap)), (["-b", "7"], 7)):
            with self.subTest(args=extra):
                srv = Server(cachet_bin(), extra, unix_path=os.path.join(d, "sock")).start()
                try:
                    got = unix_listen_backlogs(srv.pid)
                finally:
                    srv.stop()
                self.assertEqual(list(got.values()), [want], f"unix listener backlog for {extra or 'default'}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class OutOfFds(unittest.TestCase):
    """`-o no_maxconns_fast`: at `-c` (the fd limit) accept() fails with EMFILE. memcached then stops
    accepting (accepting_conns 0, listen_disabled_num +1, backlog 0) until a connection closes; it
    must not spin on the failing accept (one core busy, a warning per failure on stderr)."""

    def test_pause_and_resume(self):
        srv = Server(cachet_bin(), ["-c", "30", "-t", "2", "-b", "64", "-o", "no_maxconns_fast"]).start()
        self.addCleanup(srv.stop)
        ctl = srv.connect()
        self.addCleanup(ctl.close)
        clients = []
        self.addCleanup(lambda: [c.close() for c in clients])

        def stats():
            return dict(ctl.stats())

        def stat(name):
            return int(stats()[name])

        def replied(socks, timeout):
            return select.select(socks, [], [], timeout)[0]

        def queue():
            (q, _backlog), = tcp_listen_queues(srv.pid).values()
            return q

        # One client at a time, each until the server took it from the listen queue or paused. memcached
        # pauses when accepting that client fails; cachet may already pause on the next accept after the
        # last fd was used (the queue is empty then), so it gets one more client, which the kernel queues.
        while True:
            self.assertLess(len(clients), 40, "the server never ran out of fds")
            clients.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            if wait_for(lambda: "paused" if stat("accepting_conns") == 0 else queue() == 0,
                        what=f"client {len(clients)} accepted or the server paused") == "paused":
                break
        if queue() == 0:
            clients.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            wait_for(lambda: queue() == 1, what="a client in the listen queue")
        self.assertEqual(queue(), 1, "clients in the listen queue while paused")
        queued, served = clients[-1], clients[:-1]
        self.assertGreaterEqual(stat("listen_disabled_num"), 1)
        self.assertEqual(list(tcp_listen_backlogs(srv.pid).values()), [0], "backlog while paused")
        cpu0 = cpu_seconds(srv.pid)
        time.sleep(1.0)  # measuring a rate: the window is the measurement, not a wait for an event
        self.assertLess(cpu_seconds(srv.pid) - cpu0, 0.3, "server spins while it cannot accept")

        for c in clients:
            c.sendall(b"version\r\n")
        answered = set()
        wait_for(lambda: answered.update(replied(served, 0.05)) or len(answered) == len(served),
                 what=f"all {len(served)} accepted clients answered")
        # A closed connection frees an fd: the server accepts again and serves the queued client.
        for c in served[:5]:
            c.close()
        self.assertEqual(replied([queued], 5.0), [queued], "queued client not served after connections closed")
        self.assertEqual(queue(), 0)
        for c in clients:
            c.close()
        wait_for(lambda: stat("accepting_conns") == 1, what="accepting_conns 1 after the clients left")
        self.assertEqual(list(tcp_listen_backlogs(srv.pid).values()), [64], "backlog after resuming")
        self.assertTrue(srv.alive())
        self.assertLess(len(srv.stderr()), 4096, f"stderr flooded: {srv.stderr()[:200]!r}")


if __name__ == "__main__":
    unittest.main()
