# SPDX-License-Identifier: MIT
"""Helpers for the tests that install walcast (test_install, test_unit_file):
find the build tree, read its CMake cache, run `cmake --install` into a
temporary directory.  Python 3 standard library only.

The build tree is the one WALCASTD was built in: ctest sets WALCASTD to
<build>/cmd/walcastd, and the tests take the tree from there instead of
adding a variable to the CMake files.
"""

import os
import subprocess

import harness as h
from harness import check, fail

SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def build_dir():
    walcastd = os.path.realpath(h.binary("walcastd"))
    build = os.path.dirname(os.path.dirname(walcastd))
    check(os.path.isfile(os.path.join(build, "CMakeCache.txt")),
          "no CMakeCache.txt in %s (the build tree of WALCASTD=%s)"
          % (build, walcastd))
    return build


def cache(build):
    """The build's CMake cache as {NAME: value}."""
    values = {}
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith(("#", "//")) or "=" not in line:
                continue
            name_type, value = line.split("=", 1)
            values[name_type.split(":", 1)[0]] = value
    return values


# install directories that must be relative for an install into a
# temporary prefix to stay inside it
RELATIVE_DIRS = ("CMAKE_INSTALL_BINDIR", "CMAKE_INSTALL_SBINDIR",
                 "CMAKE_INSTALL_LIBDIR", "CMAKE_INSTALL_INCLUDEDIR",
                 "CMAKE_INSTALL_DATAROOTDIR", "CMAKE_INSTALL_MANDIR",
                 "CMAKE_INSTALL_DOCDIR", "WALCAST_SYSTEMD_UNITDIR",
                 "WALCAST_SYSUSERSDIR")


def absolute_dirs(c):
    """The configured install directories that are absolute paths: an
    install with --prefix would write them outside the prefix."""
    return ["%s=%s" % (k, c[k]) for k in RELATIVE_DIRS
            if os.path.isabs(c.get(k, ""))]


def install(build, prefix, destdir=None):
    """`cmake --install BUILD --prefix PREFIX` (with DESTDIR when given);
    returns its output."""
    c = cache(build)
    cmake = c.get("CMAKE_COMMAND", "cmake")
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    r = subprocess.run([cmake, "--install", build, "--prefix", prefix],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=env, timeout=300)
    if r.returncode != 0:
        fail("cmake --install %s --prefix %s%s failed (exit %d):\n%s"
             % (build, prefix, " (DESTDIR=%s)" % destdir if destdir else "",
                r.returncode, r.stdout))
    return r.stdout


def in_prefix(c, key, prefix, default):
    """Where the install directory named by cache key `key` is under
    prefix."""
    d = c.get(key) or default
    return d if os.path.isabs(d) else os.path.join(prefix, d)
