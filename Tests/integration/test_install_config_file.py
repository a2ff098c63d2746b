"""`cachet --config-file <file>`: Debian's memcached.conf format, read the way Debian's systemd-memcached-wrapper
reads it. Debian's default /etc/memcached.conf (fixtures/debian-memcached.conf, from the memcached 1.6.18
package) gives the same `stats settings` as memcached started by Debian's own wrapper from the same file;
bad lines stop the server with the file and line named.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Server, cachet_bin, free_port, free_ports, memcached_bin, normalise_settings

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_CONF = os.path.join(HERE, "fixtures", "debian-memcached.conf")
WRAPPER = "/usr/share/memcached/scripts/systemd-memcached-wrapper"


def wrapper_argv(path):
    """What systemd-memcached-wrapper passes to memcached (for when it cannot run: it is root-only)."""
    import re
    params = []
    with open(path) as f:
        for line in f:
            line = re.sub(r"(?<!\\)#[^#]*", "", line).strip()
            if not line or re.match(r"^-[dh]", line) or not line.startswith("-"):
                continue
            params.append(line)
    return " ".join(params).split()


class ConfigFileCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cachet-conf-")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def local_copy(self, port):
        """Debian's file, unchanged, plus a port and a pid file of this test's own (a real memcached's
        /var/run/memcached/memcached.pid must never be touched)."""
        with open(DEBIAN_CONF) as f:
            text = f.read()
        pid_dir = os.path.join(self.dir, "run")
        os.makedirs(pid_dir, exist_ok=True)
        os.chmod(pid_dir, 0o777)
        return self.write(f"memcached-{port}.conf", text + f"\n-p {port}\n-P {pid_dir}/{port}.pid\n")

    def settings(self, srv):
        with srv.connect() as c:
            return dict(c.stats("settings")), normalise_settings(c.stats("settings"))

    def test_debian_default_conf_matches_memcached_via_its_wrapper(self):
        mport, cport = free_ports(2)
        mconf, cconf = self.local_copy(mport), self.local_copy(cport)
        if os.geteuid() == 0 and os.access(WRAPPER, os.X_OK):
            oracle = Server(WRAPPER, port=mport, args=[mconf], name="memcached via wrapper")
        else:  # the wrapper refuses to run unprivileged; pass what it would have passed
            oracle = Server(memcached_bin(), port=mport, args=wrapper_argv(mconf), name="memcached")
        oracle.start()
        self.addCleanup(oracle.stop)
        srv = Server(cachet_bin(), port=cport, args=["--config-file", cconf], name="cachet").start()
        self.addCleanup(srv.stop)
        (mraw, mview), (craw, cview) = self.settings(oracle), self.settings(srv)
        self.assertEqual(craw["maxbytes"], str(64 * 1024 * 1024))
        self.assertEqual(craw["inter"], "127.0.0.1")
        self.assertEqual(craw["tcpport"], str(cport))
        self.assertEqual(cview, mview)
        # `-d` is skipped (foreground), `-u memcache` applied when started as root.
        self.assertTrue(srv.alive())
        if os.geteuid() == 0:
            with open(f"/proc/{srv.pid}/status") as f:
                uid = [ln.split()[1] for ln in f if ln.startswith("Uid:")][0]
            import pwd
            self.assertEqual(int(uid), pwd.getpwnam("memcache").pw_uid)

    def test_comments_quotes_and_command_line_override(self):
        port = free_port()
        conf = self.write("c.conf", "\n".join([
            "# a comment line",
            "   -c 500   # trailing comment",
            "-D \\#",
            "-o 'idle_timeout=7'",
            '-m "32"',
            "logfile /var/log/memcached.log",
            "-d",
            "",
        ]))
        srv = Server(cachet_bin(), port=port, args=["--config-file=" + conf, "-U", "0", "-u", "root",
                                                     "-p", str(port), "-m", "16"]).start()
        self.addCleanup(srv.stop)
        s, _ = self.settings(srv)
        self.assertEqual(s["maxconns"], "500")
        self.assertEqual(s["stat_key_prefix"], "#")
        self.assertEqual(s["idle_timeout"], "7")
        self.assertEqual(s["maxbytes"], str(16 * 1024 * 1024), "the command line comes after the file")

    def test_bad_files(self):
        cases = [
            ("-m 64\nfoo bar\n", 2, 64, "not an option"),
            ("-m 64\n\n-o bogus=1\n", 3, 1, '-o bogus=1: Illegal suboption "bogus=1"'),
            ("-q\n", 1, 1, "-q: invalid option -- 'q'"),
            ("-m\n", 1, 1, "-m: option requires an argument -- 'm'"),
            ('-l "127.0.0.1\n', 1, 64, "unterminated \" quote"),
            ("-l $HOST\n", 1, 64, "shell expansion ($) is not supported"),
            ("-V\n", 1, 64, "prints something and exits"),
            ("# ok\n-o ext_path=/tmp/x:64m\n", 2, 64, "-o ext_path=/tmp/x:64m: option -o ext_path is not supported"),
        ]
        for text, line, code, why in cases:
            with self.subTest(text):
                path = self.write("bad.conf", text)
                r = subprocess.run([cachet_bin(), "--config-file", path], capture_output=True, timeout=10)
                self.assertEqual(r.returncode, code, r.stderr)
                first = r.stderr.decode().split("\n")[0]
                self.assertTrue(first.startswith(f"cachet: {path}:{line}: "), first)
                self.assertIn(why, first)

    def test_unreadable_and_misplaced(self):
        r = subprocess.run([cachet_bin(), "--config-file", os.path.join(self.dir, "missing.conf")],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 66)
        self.assertIn(b"cannot read the config file", r.stderr)
        self.assertIn(b"missing.conf: No such file or directory", r.stderr)
        r = subprocess.run([cachet_bin(), "--config-file", self.dir], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 66)
        self.assertIn(b"not a regular file", r.stderr)
        r = subprocess.run([cachet_bin(), "--config-file"], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 64)
        ok = self.write("ok.conf", "-m 64\n")
        r = subprocess.run([cachet_bin(), "--config-file", ok, "--config-file", ok], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 64)
        self.assertIn(b"may be given once, as the first argument", r.stderr)


if __name__ == "__main__":
    unittest.main()
