"""Hand-written expectations for meta flags that memcached 1.6.18 rejects or ignores but later
memcached implements (doc/protocol.txt, 1.6.20–1.6.45). Cachet implements them as a superset, so
these cases cannot be compared with the 1.6.18 oracle; the expected bytes follow protocol.txt.

  E<cas>        mg (vivify), ms, md (with I), ma: the modified item gets this CAS (1.6.27+)
  md x          empty the value, keep the item with its flags and TTL (1.6.21+)
  ms s          return the size of the stored value (1.6.20+)
  ms MA/MP N<t> append/prepend on a miss creates the item with TTL t (1.6.20+)

Skipped when CACHET_BIN is memcached (these are not 1.6.18 behaviour).
"""

import os
import unittest

from harness import Server, cachet_bin


class MetaSupersetExpectations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.path.basename(cachet_bin()).startswith("memcached"):
            raise unittest.SkipTest("superset flags are not memcached 1.6.18 behaviour")
        cls.server = Server(cachet_bin(), [], name="cachet").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def rt(self, req):
        with self.server.connect() as c:
            return c.roundtrip(req)

    def test_superset_E_sets_cas(self):
        self.assertEqual(self.rt(b"ms e1 1 E999 c\r\nx\r\nmg e1 c v\r\n"), b"HD c999\r\nVA 1 c999\r\nx\r\n")
        self.assertEqual(self.rt(b"ms e1 1 C999 E1000 c\r\ny\r\nms e1 1 C999 E5 c\r\nz\r\n"),
                         b"HD c1000\r\nEX c0\r\n")
        self.assertEqual(self.rt(b"mg e2 N30 E555 c\r\nmg e2 c\r\n"), b"HD c555 W\r\nHD c555 Z\r\n")
        self.assertEqual(self.rt(b"md e1 I E777\r\nmg e1 c\r\n"), b"HD\r\nHD c777 X W\r\n")
        self.assertEqual(self.rt(b"ma e3 N0 J1 E50 c v\r\nma e3 E60 c\r\n"), b"VA 1 c50\r\n1\r\nHD c60\r\n")

    def test_superset_E_bad_token(self):
        self.assertEqual(self.rt(b"mg k Eabc\r\nms k 1 E\r\nx\r\nmd k Ex\r\nma k E-1\r\n"),
                         b"CLIENT_ERROR bad token in command line format\r\n"
                         b"CLIENT_ERROR bad token in command line format\r\n"
                         b"CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n")

    def test_superset_md_x_removes_value(self):
        self.assertEqual(self.rt(b"ms x1 3 F5 T100\r\nabc\r\nmd x1 x\r\nmg x1 s f v t\r\n"),
                         b"HD\r\nHD\r\nVA 0 s0 f5 t100\r\n\r\n")
        self.assertEqual(self.rt(b"md nope x\r\nmd x1 x q\r\nmg x1 s\r\n"), b"NF\r\nHD s0\r\n")

    def test_superset_ms_s_returns_size(self):
        self.assertEqual(self.rt(b"ms s1 3 s\r\nabc\r\nms s1 2 s c MA\r\nde\r\n"), b"HD s3\r\nHD s2 c%d\r\n"
                         % int(self.rt(b"mg s1 c\r\n").split(b"c")[1]))

    def test_superset_ms_append_vivify(self):
        self.assertEqual(self.rt(b"ms v1 2 MA N100\r\nxx\r\nmg v1 v t\r\n"), b"HD\r\nVA 2 t100\r\nxx\r\n")
        self.assertEqual(self.rt(b"ms v2 2 MP N50\r\nyy\r\nms v2 2 MP N10\r\nzz\r\nmg v2 v t\r\n"),
                         b"HD\r\nHD\r\nVA 4 t50\r\nzzyy\r\n")
        self.assertEqual(self.rt(b"ms v3 2 MA\r\nxx\r\nms v3 2 MS N100\r\nxx\r\nmg v3 t\r\n"),
                         b"NS\r\nHD\r\nHD t-1\r\n")


if __name__ == "__main__":
    unittest.main()
