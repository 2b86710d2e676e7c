# SPDX-License-Identifier: MIT
"""walcast benchmark driver (bench/run).  Python 3 standard library only."""
