# SPDX-License-Identifier: MIT
"""walcast benchmark driver (bench/run).  Python 3 standard library only.
Its cluster is the tests' (the wctest package in tests/integration)."""

import os
import sys

_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "integration")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
