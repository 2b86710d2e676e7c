# SPDX-License-Identifier: MIT
"""Named cases: a test file runs its cases through Cases.run(name, fn,
...), which goes on after a failure and reports at the end.

Each case is also its own ctest entry.  `test_x.py --list` prints the
case ids (a case's name in lower case, every run of other characters
an underscore), read statically from the file, without starting
anything; `test_x.py --case ID` runs the file's setup and that case
only.  A case that needs what an earlier one leaves behind names it:
cases.run("runs", fn, before=("keepalive",)) also runs "runs" whenever
"keepalive" is the case asked for.  A file whose cases only check one
shared run sets CASES_ONE_ENTRY = True at the top level: one entry
then, whose log still names the failing case.

CMake reads the ids at configure time (list_cases(), main() below);
names are literal strings in cases.run(...) calls or in a
`for name, fn in [(...), ...]: cases.run(name, ...)` loop (the list
literal may be assigned to a name first)."""

import ast
import os
import re
import sys
import time
import traceback

from .base import TestFailure, log

EX_SKIP = 77            # ctest SKIP_RETURN_CODE: the case did not run here

_selected = None        # the id of the one case to run, or None: all


def case_id(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "case"


def select(cid):
    global _selected
    _selected = cid


def _names_in(tree):
    """The case names of cases.run(...) calls in tree, in order."""
    loops = {}     # id of a cases.run call -> names from its enclosing for
    lists = {}     # a name assigned a list or tuple literal -> the literal
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name) and \
                isinstance(node.value, (ast.List, ast.Tuple)):
            lists[node.targets[0].id] = node.value
    for node in ast.walk(tree):
        if not isinstance(node, ast.For) or \
                not isinstance(node.target, ast.Tuple) or \
                not node.target.elts or \
                not isinstance(node.target.elts[0], ast.Name):
            continue
        seq = lists.get(node.iter.id) if isinstance(node.iter, ast.Name) \
            else node.iter
        if not isinstance(seq, (ast.List, ast.Tuple)):
            continue
        var = node.target.elts[0].id
        names = [e.elts[0].value for e in seq.elts
                 if isinstance(e, ast.Tuple) and e.elts and
                 isinstance(e.elts[0], ast.Constant) and
                 isinstance(e.elts[0].value, str)]
        for sub in ast.walk(node):
            if _is_run(sub) and sub.args and \
                    isinstance(sub.args[0], ast.Name) and \
                    sub.args[0].id == var:
                loops[id(sub)] = names
    calls = sorted((n for n in ast.walk(tree) if _is_run(n)),
                   key=lambda n: (n.lineno, n.col_offset))
    out = []
    for call in calls:
        if id(call) in loops:
            out.extend(loops[id(call)])
        elif call.args and isinstance(call.args[0], ast.Constant) and \
                isinstance(call.args[0].value, str):
            out.append(call.args[0].value)
        else:
            raise ValueError("line %d: a case name that is not a literal"
                             % call.lineno)
    return out


def _is_run(node):
    return isinstance(node, ast.Call) and \
        isinstance(node.func, ast.Attribute) and node.func.attr == "run" and \
        isinstance(node.func.value, ast.Name) and node.func.value.id == "cases"


def list_cases(path):
    """[(id, name)] of the cases of the test file at path; [] for a file
    without cases or with CASES_ONE_ENTRY = True."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and \
                any(isinstance(t, ast.Name) and t.id == "CASES_ONE_ENTRY"
                    for t in node.targets) and \
                isinstance(node.value, ast.Constant) and node.value.value:
            return []
    out, seen = [], set()
    for name in _names_in(tree):
        cid, n = case_id(name), 2
        while cid in seen:
            cid, n = "%s_%d" % (case_id(name), n), n + 1
        seen.add(cid)
        out.append((cid, name))
    return out


class Cases:
    """Runs named cases, keeps going after a failure, reports at the end."""

    def __init__(self):
        self.failed, self.passed = [], []
        self._seen = set()

    def _id(self, name):
        cid, n = case_id(name), 2
        while cid in self._seen:
            cid, n = "%s_%d" % (case_id(name), n), n + 1
        self._seen.add(cid)
        return cid

    def run(self, name, fn, *args, before=()):
        cid = self._id(name)
        if _selected is not None and cid != _selected and \
                _selected not in [case_id(b) for b in before]:
            return None
        log("=== case:", name)
        t0 = time.monotonic()
        try:
            fn(*args)
        except TestFailure as e:
            log("FAIL %s (%.1fs): %s" % (name, time.monotonic() - t0, e))
            self.failed.append(name)
            return False
        except Exception:
            log("ERROR %s:\n%s" % (name, traceback.format_exc()))
            self.failed.append(name)
            return False
        log("ok   %s (%.1fs)" % (name, time.monotonic() - t0))
        self.passed.append(name)
        return True

    def finish(self):
        log("passed: %d, failed: %d %s" % (len(self.passed), len(self.failed),
                                           self.failed or ""))
        if self.failed:
            return 1
        if _selected is not None and _selected not in self._seen:
            log("SKIP: case %s did not run here (see the log above)"
                % _selected)
            return EX_SKIP
        return 0


def main(argv):
    """python3 -m wctest.cases FILE...: one line per case, "NAME ID" with
    NAME the file's name without .py (what CMake reads at configure
    time)."""
    for path in argv:
        name = os.path.splitext(os.path.basename(path))[0]
        for cid, _ in list_cases(path):
            print(name, cid)


if __name__ == "__main__":
    main(sys.argv[1:])
