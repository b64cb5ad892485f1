#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Turn a command's man-page-style --help (NAME, SYNOPSIS, ... headings at
column 0, text indented) into a roff man page, so the page is generated
from the one source the command prints.  Text under a heading keeps its
layout (.nf), which keeps option tables aligned.

usage: help2roff.py COMMAND SECTION VERSION > PAGE
"""
import datetime
import os
import re
import subprocess
import sys


def esc(line):
    line = line.replace("\\", "\\e")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line.replace("-", "\\-")


def main():
    cmd, section, version = sys.argv[1:4]
    name = os.path.basename(cmd)
    text = subprocess.run([cmd, "--help"], check=True, capture_output=True,
                          text=True).stdout
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    date = (datetime.datetime.utcfromtimestamp(int(epoch)).date() if epoch
            else datetime.date.today())
    out = ['.TH "%s" "%s" "%s" "xdnat %s" "xdnat"' % (name.upper(), section,
                                                       date.isoformat(), version)]
    in_block = False
    for raw in text.splitlines():
        if re.match(r"^[A-Z][A-Z /-]+$", raw):
            if in_block:
                out.append(".fi")
            out.append(".SH %s" % raw.strip())
            if raw.strip() == "NAME":
                in_block = False
                continue
            out.append(".nf")
            in_block = True
            continue
        if not in_block:
            # NAME: "name - summary" on one line, as man(7) wants.
            if raw.strip():
                out.append(esc(raw.strip()))
            continue
        out.append(esc(raw[4:] if raw.startswith("    ") else raw))
    if in_block:
        out.append(".fi")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
