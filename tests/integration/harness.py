# SPDX-License-Identifier: MIT
"""The tests' `import harness as h`: the harness is the wctest package
(wctest/harness.py, on top of wctest.base, wctest.cluster and
wctest.cases); this name stays so that every test imports it as before."""

import sys

from wctest import harness as _harness

sys.modules[__name__] = _harness
