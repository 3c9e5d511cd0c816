"""
Run every test with a scratch working directory: trial's mktemp() makes
paths relative to it, and nothing may be written into the checkout.
"""

import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

_scratch = {}


def pytest_sessionstart(session):
    _scratch["old"] = os.getcwd()
    _scratch["dir"] = tempfile.mkdtemp(prefix="zwms-tests-")
    os.chdir(_scratch["dir"])


def pytest_sessionfinish(session, exitstatus):
    os.chdir(_scratch["old"])
    shutil.rmtree(_scratch["dir"], ignore_errors=True)
