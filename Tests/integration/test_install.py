"""`make install-files` into a temporary DESTDIR (the tree, the rendered units, uninstall), `systemd-analyze verify`
on the installed units, and the man pages: `mandoc -T lint` clean, and cachet(1) names every option letter and
every `-o` key the parser accepts.
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import REPO_ROOT

EXPECTED = {
    "usr/bin/cachet": 0o755,
    "usr/bin/cachet-bench": 0o755,
    "usr/share/man/man1/cachet.1": 0o644,
    "usr/share/man/man1/cachet-bench.1": 0o644,
    "usr/lib/systemd/system/cachet.service": 0o644,
    "usr/lib/systemd/system/cachet@.service": 0o644,
    "usr/share/doc/cachet/cachet.conf.example": 0o644,
    "etc/cachet.conf": 0o644,
}


def make(*args, env=None):
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", REPO_ROOT, *args], capture_output=True,
                          timeout=120, env=env)


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.stat(p).st_mode)
    return out


class Install(unittest.TestCase):
    def setUp(self):
        self.dest = tempfile.mkdtemp(prefix="cachet-destdir-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def test_destdir_tree_and_uninstall(self):
        r = make("install-files", f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(self.dest), EXPECTED)
        with open(os.path.join(self.dest, "usr/lib/systemd/system/cachet.service")) as f:
            unit = f.read()
        self.assertIn("\nExecStart=/usr/bin/cachet --config-file /etc/cachet.conf\n", unit)
        self.assertNotRegex(unit, r"@[A-Z]+@", "a placeholder was left unrendered")
        with open(os.path.join(self.dest, "usr/lib/systemd/system/cachet@.service")) as f:
            self.assertIn("\nExecStart=/usr/bin/cachet --config-file /etc/cachet_%i.conf\n", f.read())
        v = subprocess.run([os.path.join(self.dest, "usr/bin/cachet"), "-V"], capture_output=True, timeout=10)
        self.assertEqual(v.returncode, 0)
        self.assertTrue(v.stdout.startswith(b"cachet ") or v.stdout.startswith(b"memcached "), v.stdout)
        # The installed example config parses (it is what the unit starts with).
        conf = os.path.join(self.dest, "etc/cachet.conf")
        chk = subprocess.run([os.path.join(self.dest, "usr/bin/cachet"), "--config-file", conf, "-h"],
                             capture_output=True, timeout=10)
        self.assertEqual(chk.returncode, 0, chk.stderr)

        # A second install keeps an operator's edited config; uninstall keeps it too, removes the rest.
        with open(conf, "a") as f:
            f.write("-c 2048\n")
        r = make("install-files", f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(conf) as f:
            self.assertTrue(f.read().endswith("-c 2048\n"))
        r = make("uninstall", f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(self.dest), {"etc/cachet.conf": 0o644})
        os.remove(conf)
        make("install-files", f"DESTDIR={self.dest}", "PREFIX=/usr")
        r = make("uninstall", f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(tree(self.dest), {}, "an unmodified config is removed")

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        self.assertIsNotNone(tool, "systemd-analyze missing (Scripts/bootstrap installs the systemd package)")
        # A real prefix (no DESTDIR) so the ExecStart binary and the man page exist where the units say.
        p = self.dest
        r = make("install-files", f"PREFIX={p}/usr", f"SYSCONFDIR={p}/etc", f"SYSTEMDUNITDIR={p}/units")
        self.assertEqual(r.returncode, 0, r.stderr)
        env = dict(os.environ, MANPATH=f"{p}/usr/share/man", SYSTEMD_LOG_COLOR="0")
        for unit in ("cachet.service", "cachet@.service"):
            with self.subTest(unit):
                v = subprocess.run([tool, "verify", os.path.join(p, "units", unit)], capture_output=True,
                                   timeout=60, env=env)
                self.assertEqual((v.returncode, v.stderr.decode()), (0, ""))


class ManPages(unittest.TestCase):
    PAGES = [os.path.join(REPO_ROOT, "man", n) for n in ("cachet.1", "cachet-bench.1")]

    def test_mandoc_lint(self):
        mandoc = shutil.which("mandoc")
        self.assertIsNotNone(mandoc, "mandoc missing (Scripts/bootstrap installs it)")
        for page in self.PAGES:
            with self.subTest(page):
                r = subprocess.run([mandoc, "-T", "lint", "-W", "warning", page], capture_output=True, timeout=30)
                self.assertEqual((r.returncode, r.stdout + r.stderr), (0, b""))

    def test_every_option_documented(self):
        with open(self.PAGES[0]) as f:
            page = f.read()
        with open(os.path.join(REPO_ROOT, "Sources/CachetServer/Settings/SettingsParser.swift")) as f:
            parser = f.read()
        optstring = re.search(r'static let optstring = "([^"]+)"', parser).group(1)
        letters = {c for c in optstring if c != ":"}
        self.assertGreater(len(letters), 30)
        for c in sorted(letters):
            self.assertTrue(re.search(rf"\bFl {re.escape(c)}\b", page), f"-{c} not in cachet(1)")
        for long_name in re.findall(r'\.init\(name: "([a-z-]+)"', parser):
            self.assertTrue(f"Fl -{long_name}" in page, f"--{long_name} not in cachet(1)")
        with open(os.path.join(REPO_ROOT, "Sources/CachetServer/Settings/ExtendedOptions.swift")) as f:
            ext = f.read()
        body = ext[ext.index("private static func applyOne"):]
        keys = set(re.findall(r'case "([a-z_0-9]+)"', body)) - {"murmur3", "jenkins", "xxh3", "PEM", "DER", "ASN1"}
        self.assertIn("ssl_min_version", keys)
        for k in sorted(keys):
            self.assertTrue(re.search(rf"\b{re.escape(k)}\b", page), f"-o {k} not in cachet(1)")
        for section in ("LISTENER PREFIXES", "SIGNALS", "EXIT STATUS", "CONFIGURATION FILE", "METRICS"):
            self.assertTrue(f".Sh {section}" in page, section)
        for code in ("0", "1", "64", "66", "67", "71"):
            self.assertTrue(re.search(rf"\n\.It {code}\n", page), f"exit code {code}")


if __name__ == "__main__":
    unittest.main()
