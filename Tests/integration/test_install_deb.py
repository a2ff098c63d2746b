"""`make deb`'s Scripts/deb (≈10 s, so it runs in `make test`): the package's control fields, Depends derived from
the binaries (libevent, libssl), its file list, the conffile, and maintainer scripts that parse. Installing it is
not done here (it changes the machine); the report of issue 15 lists the manual install/purge check.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO_ROOT


class Deb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="cachet-deb-")
        r = subprocess.run([os.path.join(REPO_ROOT, "Scripts", "deb"), cls.out], capture_output=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"Scripts/deb failed: {r.stderr.decode()}")
        cls.deb = r.stdout.decode().strip().split("\n")[-1]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, True)

    def field(self, name):
        return subprocess.run(["dpkg-deb", "-f", self.deb, name], capture_output=True, timeout=30,
                              check=True).stdout.decode().strip()

    def test_control(self):
        self.assertTrue(os.path.basename(self.deb).startswith("cachet_"))
        self.assertEqual(self.field("Package"), "cachet")
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
        self.assertEqual(self.field("Architecture"), arch)
        depends = self.field("Depends")
        for pkg in ("libevent-2.1-7", "libevent-pthreads-2.1-7", "libssl3", "libc6", "adduser"):
            self.assertRegex(depends, rf"(^|, ){re.escape(pkg)}( \(>= [^)]+\))?(,|$)", depends)
        self.assertNotIn("-dev", depends)

    def test_contents_and_scripts(self):
        listing = subprocess.run(["dpkg-deb", "-c", self.deb], capture_output=True, text=True, check=True,
                                 timeout=30).stdout
        files = {ln.split()[-1].lstrip(".") for ln in listing.splitlines() if not ln.startswith("d")}
        for f in ("/usr/bin/cachet", "/usr/bin/cachet-bench", "/usr/share/man/man1/cachet.1.gz",
                  "/usr/share/man/man1/cachet-bench.1.gz", "/lib/systemd/system/cachet.service",
                  "/lib/systemd/system/cachet@.service", "/etc/cachet.conf", "/usr/share/doc/cachet/copyright"):
            self.assertIn(f, files)
        self.assertIn("root/root", listing)
        ctrl = tempfile.mkdtemp(dir=self.out)
        subprocess.run(["dpkg-deb", "-e", self.deb, ctrl], check=True, timeout=30)
        with open(os.path.join(ctrl, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/cachet.conf"])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(ctrl, script)
            self.assertTrue(os.access(path, os.X_OK), script)
            self.assertEqual(subprocess.run(["sh", "-n", path], timeout=10).returncode, 0, script)
        with open(os.path.join(ctrl, "postinst")) as f:
            self.assertIn("adduser --system", f.read())


if __name__ == "__main__":
    unittest.main()
