# SPDX-License-Identifier: MIT
"""`cmake --install`: what an operator and a plugin author get.

1. prefix: install into a temporary prefix; the programs run and report
   the project's version, the plugin header and walcast.pc (pointing into
   the prefix), the shipped plugins (not writable by group or others, or
   walcastd would refuse them), the systemd unit and sysusers.d file, the
   man pages, the documentation and the example configuration (identical
   to config/walcast.yaml, and valid for the installed walcastd).  Nothing
   is installed under etc/: an install never overwrites an operator's
   /etc/walcast/walcast.yaml.
2. destdir: a packager's `DESTDIR=ROOT cmake --install --prefix /usr`
   puts every file under ROOT, and the unit and walcast.pc name /usr, not
   ROOT.
3. man: every installed page renders: groff with all warnings on reports
   nothing, `man -l` shows NAME and SYNOPSIS, and lexgrog (what mandb
   uses for whatis) reads the NAME line.  Without groff and man only the
   roff structure is checked.
4. doclinks: the documentation reads where it is installed: every
   relative link of every installed page (README.md, docs/, the bench
   reports) leads to an installed file, and an anchor to a heading of it;
   the same links hold in the source tree; no page names a DESIGN.md,
   which the project does not ship.
5. md2man: the converter escapes what roff would misread (a line starting
   with ".", hyphens, backslashes) so that the text renders as written,
   and refuses Markdown it does not support, naming file and line.
"""

import filecmp
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import installtree  # noqa: E402
from harness import check, fail  # noqa: E402

SRC = installtree.SRC
MD2MAN = os.path.join(SRC, "cmake", "md2man.py")
PAGES = {"walcastd.8": "walcastd", "walcast.1": "walcast",
         "walcast.yaml.5": "walcast.yaml"}
PLUGINS = ("jsonl.so", "example.so")


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        m = re.search(r"project\(walcast\s+VERSION\s+([0-9.]+)", f.read())
    check(m, "no project(walcast VERSION ...) in CMakeLists.txt")
    return m.group(1)


class Tree:
    """Where the build's install directories are under a prefix."""

    def __init__(self, c, prefix):
        def d(key, default):
            return installtree.in_prefix(c, key, prefix, default)
        datarootdir = c.get("CMAKE_INSTALL_DATAROOTDIR") or "share"
        self.prefix = prefix
        self.bindir = d("CMAKE_INSTALL_BINDIR", "bin")
        self.sbindir = d("CMAKE_INSTALL_SBINDIR", "sbin")
        self.libdir = d("CMAKE_INSTALL_LIBDIR", "lib")
        self.includedir = d("CMAKE_INSTALL_INCLUDEDIR", "include")
        self.mandir = d("CMAKE_INSTALL_MANDIR", datarootdir + "/man")
        self.docdir = d("CMAKE_INSTALL_DOCDIR", datarootdir + "/doc/walcast")
        self.unitdir = d("WALCAST_SYSTEMD_UNITDIR", "lib/systemd/system")
        self.sysusersdir = d("WALCAST_SYSUSERSDIR", "lib/sysusers.d")

    def files(self, man=True):
        f = {
            "walcastd": os.path.join(self.sbindir, "walcastd"),
            "walcast": os.path.join(self.bindir, "walcast"),
            "plugin.h": os.path.join(self.includedir, "walcast", "plugin.h"),
            "walcast.pc": os.path.join(self.libdir, "pkgconfig",
                                       "walcast.pc"),
            "unit": os.path.join(self.unitdir, "walcastd.service"),
            "sysusers": os.path.join(self.sysusersdir, "walcast.conf"),
            "example": os.path.join(self.docdir, "examples", "walcast.yaml"),
            "configuration.md": os.path.join(self.docdir,
                                             "configuration.md"),
        }
        for p in PLUGINS:
            f[p] = os.path.join(self.libdir, "walcast", "plugins", p)
        if man:
            for page in PAGES:
                f[page] = os.path.join(self.mandir, "man" + page[-1], page)
        return f


def pc_variable(path, name):
    with open(path) as f:
        for line in f:
            if line.startswith(name + "="):
                return line.split("=", 1)[1].strip()
    fail("%s has no %s=" % (path, name))


def man_enabled(c):
    return c.get("WALCAST_MAN", "ON").upper() in ("ON", "TRUE", "1", "YES")


# --------------------------------------------------------------------------

def case_prefix(ctx):
    c = ctx["cache"]
    tree = ctx["tree"]
    files = tree.files(man_enabled(c))
    missing = [p for p in files.values() if not os.path.isfile(p)]
    check(not missing, "not installed:\n  " + "\n  ".join(missing))

    version = project_version()
    for name in ("walcastd", "walcast"):
        r = h.run([files[name], "--version"])
        check(r.returncode == 0 and r.stdout.strip() == "%s %s"
              % (name, version), "installed %s --version: exit %d, %r"
              % (name, r.returncode, r.stdout))

    check(filecmp.cmp(files["plugin.h"], os.path.join(
        SRC, "lib", "include", "walcast", "plugin.h"), shallow=False),
        "installed plugin.h differs from lib/include/walcast/plugin.h")
    pc_prefix = pc_variable(files["walcast.pc"], "prefix")
    check(pc_prefix == tree.prefix, "walcast.pc: prefix=%s, expected %s"
          % (pc_prefix, tree.prefix))

    for p in PLUGINS:
        mode = os.stat(files[p]).st_mode
        dmode = os.stat(os.path.dirname(files[p])).st_mode
        check(not (mode | dmode) & (stat.S_IWGRP | stat.S_IWOTH),
              "%s or its directory is writable by group or others "
              "(%o, %o): walcastd would refuse it" % (files[p], mode, dmode))

    with open(files["unit"]) as f:
        unit = f.read()
    want = "ExecStart=%s -c /etc/walcast/walcast.yaml" % files["walcastd"]
    check(want in unit.splitlines(), "the installed unit lacks %r" % want)

    check(filecmp.cmp(files["example"], os.path.join(
        SRC, "config", "walcast.yaml"), shallow=False),
        "installed example differs from config/walcast.yaml")
    r = h.run([files["walcastd"], "-c", files["example"], "--check"])
    check(r.returncode == 0, "the installed example configuration does not "
          "pass the installed walcastd --check (exit %d): %s"
          % (r.returncode, r.stderr))

    etc = os.path.join(tree.prefix, "etc")
    check(not os.path.exists(etc), "the install wrote under %s: %s"
          % (etc, os.listdir(etc) if os.path.isdir(etc) else ""))


def case_destdir(ctx):
    root = os.path.join(ctx["tmp"], "root")
    installtree.install(ctx["build"], "/usr", destdir=root)
    c = ctx["cache"]
    tree = Tree(c, "/usr")
    for name, path in tree.files(man_enabled(c)).items():
        check(os.path.isfile(root + path), "DESTDIR install: no %s at %s"
              % (name, root + path))
    # nothing outside /usr but what the build was told to put there
    allowed = {"usr"} | {c[k].strip("/").split("/")[0]
                         for k in installtree.RELATIVE_DIRS
                         if os.path.isabs(c.get(k, ""))}
    top = set(os.listdir(root))
    check(top <= allowed, "DESTDIR install wrote outside %s: %s"
          % (sorted(allowed), sorted(top - allowed)))
    files = tree.files(False)
    with open(root + files["unit"]) as f:
        unit = f.read()
    check("ExecStart=/usr/%s/walcastd " % (c.get("CMAKE_INSTALL_SBINDIR")
                                           or "sbin") in unit,
          "the unit does not start /usr's walcastd:\n" + unit)
    check(root not in unit, "the unit names the DESTDIR %s" % root)
    pc = root + files["walcast.pc"]
    check(pc_variable(pc, "prefix") == "/usr",
          "walcast.pc: prefix=%s, expected /usr" % pc_variable(pc, "prefix"))
    with open(pc) as f:
        check(root not in f.read(), "walcast.pc names the DESTDIR")


def case_man(ctx):
    c = ctx["cache"]
    if not man_enabled(c):
        h.log("SKIP man: the build has WALCAST_MAN=OFF")
        return
    tree = ctx["tree"]
    groff = shutil.which("groff")
    man = shutil.which("man")
    lexgrog = shutil.which("lexgrog")
    for page, name in PAGES.items():
        path = os.path.join(tree.mandir, "man" + page[-1], page)
        with open(path) as f:
            roff = f.read()
        check(re.search(r'^\.TH "%s" "%s" ' % (re.escape(
            name.upper()).replace("\\-", "\\\\-"), page[-1]), roff, re.M),
            "%s: no .TH line for %s(%s)" % (path, name, page[-1]))
        check('\n.SH "NAME"\n' in roff, "%s: no NAME section" % path)
        if groff:
            # -ww: every warning; -z: no output, only the diagnostics
            r = h.run([groff, "-man", "-ww", "-z", "-Tutf8", path])
            check(r.returncode == 0 and not r.stderr.strip(),
                  "groff reports problems in %s:\n%s" % (path, r.stderr))
        if man:
            env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
            r = subprocess.run([man, "-l", path], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               timeout=60)
            text = re.sub(".\b", "", r.stdout)   # overstrike bold
            check(r.returncode == 0 and not r.stderr.strip(),
                  "man -l %s: exit %d, %s" % (path, r.returncode, r.stderr))
            for word in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
                check(re.search(r"^%s$" % word, text, re.M),
                      "man -l %s shows no %s section" % (path, word))
            check(re.search(r"^\s+%s\s+-\s+\S" % re.escape(name), text,
                            re.M),
                  "man -l %s: no \"%s - ...\" line under NAME" % (path, name))
        if lexgrog:
            r = h.run([lexgrog, path])
            check(r.returncode == 0 and '"%s - ' % name in r.stdout,
                  "lexgrog cannot read the NAME line of %s: %s %s"
                  % (path, r.stdout, r.stderr))
    if not groff and not man:
        h.log("neither groff nor man: only the roff structure was checked")


LINK_RE = re.compile(r"\]\(([^()\s]+)\)")


def slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    out, fence = set(), False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fence = not fence
            elif not fence and re.match(r"#{1,6} ", line):
                out.add(slug(line.lstrip("#")))
    return out


def broken_links(page):
    """The relative links of a Markdown page that lead nowhere."""
    bad = []
    with open(page, encoding="utf-8") as f:
        text = f.read()
    for target in LINK_RE.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue                      # https:, mailto:
        path, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) \
            if path else page
        if not os.path.isfile(dest):
            bad.append("%s: %s (no file %s)" % (page, target, dest))
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            bad.append("%s: %s (no heading #%s in %s)"
                       % (page, target, anchor, dest))
    return bad


def case_doclinks(ctx):
    tree = ctx["tree"]
    pages = []
    for d, _, names in os.walk(tree.docdir):
        pages += [os.path.join(d, n) for n in names if n.endswith(".md")]
    for want in ("README.md", "configuration.md", "file-format.md"):
        check(os.path.join(tree.docdir, want) in pages,
              "%s is not installed in %s" % (want, tree.docdir))
    bad = []
    for page in sorted(pages):
        bad += broken_links(page)
    check(not bad, "%d broken link(s) in the installed docs:\n  %s"
          % (len(bad), "\n  ".join(bad)))
    src = [os.path.join(SRC, "README.md")] + [
        os.path.join(d, n) for sub in ("docs", "bench")
        for d, _, names in os.walk(os.path.join(SRC, sub))
        for n in names if n.endswith(".md")]
    bad = []
    for page in sorted(src):
        bad += broken_links(page)
    check(not bad, "%d broken link(s) in the source tree's docs:\n  %s"
          % (len(bad), "\n  ".join(bad)))
    named = []
    mandir = tree.mandir if man_enabled(ctx["cache"]) else None
    for d in (tree.docdir, mandir):
        for root, _, names in os.walk(d) if d else ():
            for n in names:
                with open(os.path.join(root, n), "rb") as f:
                    if b"DESIGN.md" in f.read():
                        named.append(os.path.join(root, n))
    check(not named, "installed docs name DESIGN.md, which is not "
          "shipped: %s" % named)
    h.log("doclinks: %d installed pages, every relative link resolves"
          % len(pages))


def md2man(src, dst):
    return h.run([sys.executable, MD2MAN, "--version", "9.9", src, dst])


def case_md2man(ctx):
    tmp = ctx["tmp"]
    src = os.path.join(tmp, "demo.1.md")
    dst = os.path.join(tmp, "demo.1")
    with open(src, "w") as f:
        f.write("# demo(1)\n\n## NAME\n\ndemo - show escaping\n\n"
                "## SYNOPSIS\n\n**demo** **--check** *FILE*\n\n"
                "## DESCRIPTION\n\n"
                "Some text that wraps, and then\n"
                ".hidden starts a line,\n"
                "'quoted starts another,\n"
                "a back\\slash, and `--long-option` stays ASCII.\n\n"
                "- **-x**, **--extra**\\\n  What it does.\n\n"
                "```\n.literal \\n line\n```\n\n"
                "## SEE ALSO\n\n**walcast**(1)\n")
    r = md2man(src, dst)
    check(r.returncode == 0, "md2man failed: %s" % r.stderr)
    with open(dst) as f:
        roff = f.read()
    check('.TH "DEMO" "1" ' in roff and '"walcast 9.9"' in roff,
          "no .TH with name, section and version:\n" + roff)
    check("\n\\&.hidden" in roff and "\n\\&'quoted" in roff,
          "a text line starting with . or ' is not protected:\n" + roff)
    groff = shutil.which("groff")
    if groff:
        r = h.run([groff, "-man", "-Tascii", "-P-cbou", dst])
        check(r.returncode == 0, "groff failed: %s" % r.stderr)
        text = " ".join(r.stdout.split())
        for want in ("demo - show escaping", ".hidden starts a line",
                     "'quoted starts another", "a back\\slash",
                     "--long-option stays ASCII", "-x, --extra",
                     "What it does.", ".literal \\n line"):
            check(want in text, "rendered page lacks %r:\n%s"
                  % (want, r.stdout))

    bad = {
        "table": ("# demo(1)\n\n## NAME\n\ndemo - x\n\n| a | b |\n", 7),
        "html": ("# demo(1)\n\n## NAME\n\ndemo - x <br> y\n", 5),
        "title": ("# other(1)\n\n## NAME\n\ndemo - x\n", 1),
        "unclosed": ("# demo(1)\n\n## NAME\n\ndemo - x\n\n```\ncode\n", 7),
    }
    for what, (text, line) in bad.items():
        with open(src, "w") as f:
            f.write(text)
        if os.path.exists(dst):
            os.unlink(dst)
        r = md2man(src, dst)
        check(r.returncode != 0 and "%s:%d:" % (src, line) in r.stderr,
              "md2man on a %s: exit %d, %r (expected an error at line %d)"
              % (what, r.returncode, r.stderr, line))
        check(not os.path.exists(dst), "md2man left %s after an error" % dst)


def main():
    build = installtree.build_dir()
    c = installtree.cache(build)
    tmp = h.make_tmpdir()
    ctx = {"build": build, "cache": c, "tmp": tmp}
    cases = h.Cases()
    bad = installtree.absolute_dirs(c)
    if bad:
        h.log("SKIP prefix, man: absolute install directories (%s) would "
              "land outside a temporary prefix" % ", ".join(bad))
    else:
        prefix = os.path.join(tmp, "prefix")
        installtree.install(build, prefix)
        ctx["tree"] = Tree(c, prefix)
        cases.run("prefix", case_prefix, ctx)
        cases.run("man", case_man, ctx)
        cases.run("doclinks", case_doclinks, ctx)
    cases.run("destdir", case_destdir, ctx)
    cases.run("md2man", case_md2man, ctx)
    return cases.finish()


if __name__ == "__main__":
    h.main(main)
