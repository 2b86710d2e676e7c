# SPDX-License-Identifier: MIT
"""wctest: walcast's test harness, Python 3 standard library only.

  wctest.base     logging, failures, the cleanup registry, temporary
                  directories, ports, polling, LSNs (no import side effects)
  wctest.cluster  a throwaway PostgreSQL 15 + wal2json cluster (Cluster),
                  also the benchmark's (bench/wcbench/cluster.py)
  wctest.cases    named cases: list them, run one (--list, --case)
  wctest.harness  everything a test file uses (import harness as h);
                  importing it installs the exit and signal handlers
"""
