#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns walcast's man-page Markdown (docs/*.[158].md) into man(7) roff.

usage: md2man.py [--version VERSION] INPUT.md OUTPUT

The pages are written as Markdown so that they read well on GitHub and
stay next to the other docs; this converter knows only the small subset
they use, and rejects anything else with FILE:LINE, rather than let a
construct it does not know come out mangled in `man`:

    # NAME(SECTION)              first line: the page's name and section,
                                 which must match the file name
    ## HEADING                   .SH            ### Heading   .SS
    a paragraph                  .PP; a line ending in "\\" breaks there
    - an item                    a bullet (.IP); continuation lines are
                                 indented by two spaces
    - **term**\\                  a term and its description (.TP): the
      description                first line ends in "\\"
    1. an item                   a numbered item
    ```                          a literal block (.nf), top level or
                                 indented inside an item
    **bold**, *italic*, `code`   \\fB \\fI \\fB
    [text](target)               text; an absolute URL is kept after it

Python 3 standard library only.  The date in .TH comes from
SOURCE_DATE_EPOCH when set (reproducible builds), else it is left out.
"""

import datetime
import os
import re
import sys

MANUALS = {
    "1": "User Commands",
    "5": "File Formats",
    "8": "System Administration",
}
# sections every page must have, in this order when present
REQUIRED = ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO")


class Error(Exception):
    pass


def escape(text):
    """Escapes plain text for roff: backslashes; hyphens as \\- so that
    options and names copied from the page are ASCII minus signs; other
    than ASCII as \\[uXXXX], which needs no input encoding."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c)
                   for c in text)


INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|\*\*(?P<bold>[^*]+)\*\*"
    r"|\*(?P<ital>[^*\s][^*]*)\*"
    r"|\[(?P<ltext>[^\]]+)\]\((?P<url>[^)\s]+)\)")


def inline(text, where):
    """Converts one line's inline markup; font changes never nest."""
    out, pos = [], 0
    for m in INLINE.finditer(text):
        out.append(plain(text[pos:m.start()], where))
        if m.group("code") is not None:
            # \\% keeps a literal or a name from being hyphenated
            out.append("\\fB\\%" + escape(m.group("code")) + "\\fR")
        elif m.group("bold") is not None:
            out.append("\\fB\\%" + escape(m.group("bold")) + "\\fR")
        elif m.group("ital") is not None:
            out.append("\\fI" + escape(m.group("ital")) + "\\fR")
        else:
            out.append(inline(m.group("ltext"), where))
            url = m.group("url")
            if re.match(r"[a-z]+://", url):
                out.append(" (" + escape(url) + ")")
        pos = m.end()
    out.append(plain(text[pos:], where))
    return "".join(out)


def plain(text, where):
    # a stray marker means markup this converter did not understand
    for c in ("`", "**"):
        if c in text:
            raise Error("%s: unbalanced %r in %r" % (where, c, text.strip()))
    if re.search(r"<[A-Za-z/!]", text):
        raise Error("%s: HTML is not supported: %r" % (where, text.strip()))
    if re.search(r"(^|\s)\*|\*($|\s)", text):
        raise Error("%s: unbalanced '*' in %r" % (where, text.strip()))
    return escape(text)


def request_safe(line):
    """A text line starting with . or ' would be read as a request."""
    return "\\&" + line if line[:1] in (".", "'") else line


class Converter:
    def __init__(self, path, lines, version):
        self.path = path
        self.lines = lines
        self.version = version
        self.i = 0
        self.out = []
        self.sections = []

    def where(self, i=None):
        return "%s:%d" % (self.path, (self.i if i is None else i) + 1)

    def fail(self, msg, i=None):
        raise Error("%s: %s" % (self.where(i), msg))

    # -- the page header -------------------------------------------------

    def header(self):
        base = os.path.basename(self.path)
        m = re.fullmatch(r"(.+)\.([1-8])\.md", base)
        if not m:
            raise Error("%s: the file name must be NAME.SECTION.md"
                        % self.path)
        name, section = m.groups()
        first = self.lines[0].rstrip("\n") if self.lines else ""
        if first != "# %s(%s)" % (name, section):
            self.fail("the first line must be \"# %s(%s)\"" % (name, section),
                      0)
        date = ""
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch:
            date = datetime.datetime.fromtimestamp(
                int(epoch), datetime.timezone.utc).strftime("%Y-%m-%d")
        self.out.append('.\\" generated from %s by cmake/md2man.py; edit that'
                        % base)
        self.out.append('.TH "%s" "%s" "%s" "walcast %s" "%s"'
                        % (escape(name.upper()), section, date,
                           escape(self.version), MANUALS.get(section, "")))
        self.i = 1

    # -- blocks ----------------------------------------------------------

    def run(self):
        self.header()
        n = len(self.lines)
        while self.i < n:
            line = self.lines[self.i].rstrip("\n")
            if not line.strip():
                self.i += 1
            elif line.startswith("## "):
                title = line[3:].strip()
                self.sections.append(title)
                self.out.append('.SH "%s"' % escape(title))
                self.i += 1
            elif line.startswith("### "):
                self.out.append('.SS "%s"' % escape(line[4:].strip()))
                self.i += 1
            elif line.startswith("#"):
                self.fail("only # (the title), ## and ### headings are "
                          "supported")
            elif line.startswith("```"):
                self.out.append(".PP")
                self.out.append(".RS 4")
                self.literal(0)
                self.out.append(".RE")
            elif re.match(r"(- |\d+\. )", line):
                self.item(line)
            elif line.startswith((" ", "\t")):
                self.fail("unexpected indented line outside a list item")
            elif line.startswith((">", "|", "<")):
                self.fail("block quotes, tables and HTML are not supported "
                          "(use a term list: \"- **term**\\\" and an "
                          "indented description)")
            else:
                self.out.append(".PP")
                self.paragraph(0)
        self.check_sections()
        return "\n".join(self.out) + "\n"

    def paragraph(self, indent):
        """Consumes the lines of one paragraph, indented by `indent`, up to
        a blank line or the start of another block; a line ending in \\
        is followed by a break."""
        n = len(self.lines)
        first = True
        while self.i < n:
            raw = self.lines[self.i].rstrip("\n")
            if not raw.strip() or not raw.startswith(" " * indent):
                break
            body = raw[indent:]
            if not first and re.match(r"(- |\d+\. |#|```)", body):
                break
            if body.startswith((" ", "\t")):
                self.fail("unexpected indentation (nested lists are not "
                          "supported)")
            brk = body.endswith("\\")
            if brk:
                body = body[:-1].rstrip()
            self.out.append(request_safe(inline(body, self.where())))
            if brk:
                self.out.append(".br")
            self.i += 1
            first = False

    def literal(self, indent):
        """A fenced block; its lines keep their spacing."""
        start = self.i
        self.i += 1
        self.out.append(".nf")
        n = len(self.lines)
        while self.i < n:
            raw = self.lines[self.i].rstrip("\n")
            if raw.strip() == "```":
                self.out.append(".fi")
                self.i += 1
                return
            if raw.strip() and not raw.startswith(" " * indent):
                self.fail("a literal block inside a list item must be "
                          "indented like the item's text")
            text = "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c)
                           for c in raw[indent:].replace("\\", "\\e"))
            self.out.append(request_safe(text) if text else "")
            self.i += 1
        self.fail("literal block not closed", start)

    def item(self, first):
        m = re.match(r"(- |\d+\. )(.*)", first)
        marker, text = m.groups()
        indent = len(marker)
        if text.endswith("\\"):
            # a term: its line, then the description below it
            self.out.append(".TP")
            self.out.append(request_safe(inline(text[:-1].rstrip(),
                                                self.where())))
            self.i += 1
            if (self.i >= len(self.lines) or
                    not self.lines[self.i].startswith(" " * indent) or
                    not self.lines[self.i].strip()):
                self.fail("a term needs its description on the next line, "
                          "indented by %d" % indent)
        else:
            tag = "\\(bu" if marker == "- " else marker.strip()
            self.out.append(".IP %s %d" % (tag, 2 if marker == "- " else 4))
            # the first line without its marker, the rest indented
            self.lines[self.i] = " " * indent + text + "\n"
        self.paragraph(indent)
        # further paragraphs or literal blocks of the same item
        n = len(self.lines)
        while self.i < n:
            j = self.i
            while j < n and not self.lines[j].strip():
                j += 1
            if j >= n or not self.lines[j].startswith(" " * indent):
                return
            self.i = j
            if self.lines[j].strip().startswith("```"):
                self.out.append(".IP")
                self.literal(indent)
            else:
                self.out.append(".IP")
                self.paragraph(indent)

    def check_sections(self):
        if not self.sections or self.sections[0] != "NAME":
            raise Error("%s: the first section must be NAME" % self.path)
        present = [s for s in REQUIRED if s in self.sections]
        missing = [s for s in REQUIRED if s not in self.sections]
        if missing:
            raise Error("%s: missing section(s): %s"
                        % (self.path, ", ".join(missing)))
        order = [s for s in self.sections if s in REQUIRED]
        if order != present:
            raise Error("%s: sections %s must come in this order"
                        % (self.path, ", ".join(REQUIRED)))
        # whatis(1) and mandb read the NAME line: "name \- what it is"
        k = self.out.index('.SH "NAME"')
        name_text = " ".join(
            x for x in self.out[k + 1:k + 4]
            if not x.startswith("."))
        if " \\- " not in name_text:
            raise Error("%s: NAME must read \"name - what it is\""
                        % self.path)


def main(argv):
    args = argv[1:]
    version = ""
    if len(args) >= 2 and args[0] == "--version":
        version, args = args[1], args[2:]
    if len(args) != 2:
        sys.stderr.write("usage: md2man.py [--version VERSION] INPUT.md "
                         "OUTPUT\n")
        return 2
    src, dst = args
    try:
        with open(src, encoding="utf-8") as f:
            lines = f.readlines()
        roff = Converter(src, lines, version).run()
    except (OSError, UnicodeDecodeError, Error) as e:
        sys.stderr.write("md2man: %s\n" % e)
        return 1
    # write whole or not at all: a failed run must not leave a page that
    # make would take as up to date
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(roff)
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
