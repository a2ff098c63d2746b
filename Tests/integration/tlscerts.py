"""Test certificates for the TLS tests, generated with the `openssl` CLI into a temp dir at test
time (nothing is committed).

    certs = shared()                # one set per test process, removed at exit
    certs = TestCerts.create()      # a private set; certs.cleanup() at the end
    certs.ca_crt, certs.server1_crt/key (CN=server1, OU=first),
    certs.server2_crt/key (different key, CN=server2, OU=second),
    certs.client_crt/key (signed by the CA), certs.garbage_key (not a key at all)

`LiveFiles` is a per-server directory holding `chain.pem`/`key.pem`/`ca.pem` whose contents the
tests swap (atomically, via rename) between `refresh_certs`/SIGHUP calls.

`self_signed(dir)` writes a self-signed CN=localhost certificate and key (no CA) into `dir`.
"""

import atexit
import os
import shutil
import subprocess
import tempfile

OPENSSL = os.environ.get("OPENSSL_BIN", "openssl")


def _run(args, cwd):
    r = subprocess.run([OPENSSL, *args], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()}")


class TestCerts:
    def __init__(self, root):
        self.root = root
        p = lambda n: os.path.join(root, n)  # noqa: E731
        self.ca_crt, self.ca_key = p("ca.crt"), p("ca.key")
        self.server1_crt, self.server1_key = p("server1.crt"), p("server1.key")
        self.server2_crt, self.server2_key = p("server2.crt"), p("server2.key")
        self.client_crt, self.client_key = p("client.crt"), p("client.key")
        self.garbage_key = p("garbage.key")

    @classmethod
    def create(cls):
        root = tempfile.mkdtemp(prefix="cachet-tls-")
        c = cls(root)
        try:
            c._generate()
        except Exception:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return c

    def _generate(self):
        d = self.root
        with open(os.path.join(d, "leaf.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        _run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
              "-subj", "/O=Cachet Tests/OU=ca/CN=Cachet Test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-keyout", "ca.key", "-out", "ca.crt"], d)
        for name, ou in (("server1", "first"), ("server2", "second"), ("client", "client")):
            _run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/O=Cachet Tests/OU={ou}/CN={name}",
                  "-keyout", f"{name}.key", "-out", f"{name}.csr"], d)
            _run(["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                  "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", f"{name}.crt"], d)
        with open(self.garbage_key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nthis is not a key at all\n-----END PRIVATE KEY-----\n")

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


_SHARED = None


def shared():
    """The process's TestCerts: generated on first use (RSA key generation costs about a second), shared by
    every test module, removed when the process exits."""
    global _SHARED
    if _SHARED is None:
        _SHARED = TestCerts.create()
        atexit.register(_SHARED.cleanup)
    return _SHARED


def self_signed(directory, cert="cert.pem", key="key.pem", san=None):
    """A self-signed CN=localhost certificate and its key written to `directory` (`san`: a
    subjectAltName value, or None for none); returns their absolute paths."""
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
    if san:
        args += ["-addext", f"subjectAltName={san}"]
    _run(args + ["-keyout", key, "-out", cert], directory)
    return os.path.join(os.path.abspath(directory), cert), os.path.join(os.path.abspath(directory), key)


class LiveFiles:
    """Files a server is configured with; `install()` swaps their contents atomically."""

    def __init__(self, certs, name):
        self.certs = certs
        self.dir = tempfile.mkdtemp(prefix=f"live-{name}-", dir=certs.root)
        self.chain = os.path.join(self.dir, "chain.pem")
        self.key = os.path.join(self.dir, "key.pem")
        self.ca = os.path.join(self.dir, "ca.pem")
        self.install(certs.server1_crt, certs.server1_key, certs.ca_crt)

    @staticmethod
    def _put(src, dst):
        if src is None:  # remove the file (a "missing file" case)
            try:
                os.unlink(dst)
            except FileNotFoundError:
                pass
            return
        tmp = dst + ".tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)

    def install(self, chain="keep", key="keep", ca="keep"):
        """Each argument: a source path, None (delete), or "keep"."""
        for src, dst in ((chain, self.chain), (key, self.key), (ca, self.ca)):
            if src != "keep":
                self._put(src, dst)

    def good(self, n):
        c = self.certs
        if n == 1:
            self.install(c.server1_crt, c.server1_key)
        else:
            self.install(c.server2_crt, c.server2_key)
