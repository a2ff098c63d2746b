#!/usr/bin/python3
"""Entry point for the socket-level test layers (integration, differential, real clients).

    /usr/bin/python3 Tests/integration/run_all.py            # make test
    CACHET_STRESS=1 /usr/bin/python3 Tests/integration/run_all.py   # also Tests/stress/stress.py

Runs `/usr/bin/python3 -m unittest discover -s Tests/integration -p 'test_*.py' -v` against
CACHET_BIN (default .build/release/cachet; CACHET_BIN=/usr/bin/memcached checks the harness)
and exits non-zero on any failure. CACHET_DIFF_REPORT=<file> writes the differential
mismatch list there.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"


def main():
    if not os.path.exists(PY):
        print(f"{PY} (Debian's interpreter with python3-pymemcache) is required", file=sys.stderr)
        return 2
    env = dict(os.environ)
    print(f"server under test: {env.get('CACHET_BIN', os.path.join(ROOT, '.build/release/cachet'))}",
          file=sys.stderr)
    rc = subprocess.call([PY, "-W", "ignore::ResourceWarning", "-m", "unittest", "discover",
                          "-s", HERE, "-t", HERE, "-p", "test_*.py", "-v"], cwd=ROOT, env=env)
    if env.get("CACHET_STRESS") == "1":
        rc_stress = subprocess.call([PY, os.path.join(ROOT, "Tests", "stress", "stress.py")],
                                    cwd=ROOT, env=env)
        rc = rc or rc_stress
    return 1 if rc else 0


if __name__ == "__main__":
    sys.exit(main())
