#!/usr/bin/env python3
"""For every project header, the C files of `make all` that include it,
directly or through other headers, computed from the #include lines alone
(independently of the compiler's -MMD output), printed as
"HEADER: file.c file.c ...".  selftests/e2e_build_deps.sh compares this with
what `make -n` rebuilds after touching the header."""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else '.'
os.chdir(root)
inc_dirs = ['maps'] + sorted('loader/' + d for d in os.listdir('loader')
                             if os.path.isdir('loader/' + d)) + ['ca', 'bpf']
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

def resolve(name, from_dir):
    for d in [from_dir] + inc_dirs:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(p):
            return p
    return None          # generated (skeletons) or system header

def includes(path, seen):
    with open(path, errors='replace') as f:
        text = f.read()
    for name in inc_re.findall(text):
        p = resolve(name, os.path.dirname(path))
        if p and p not in seen:
            seen.add(p)
            includes(p, seen)
    return seen

sources = []
for top in ('loader', 'ca'):
    for d, _, files in os.walk(top):
        sources += [os.path.join(d, f) for f in files if f.endswith('.c')]
# `make all` also builds the test tools named in SELFTEST_TOOLS; their main
# files are the selftests/*.c named in those programs' link rules.
with open('Makefile') as f:
    mk = f.read()
tools = re.search(r'^SELFTEST_TOOLS\s*:=(.*)$', mk, re.M)
for tool in (tools.group(1).split() if tools else []):
    rule = re.search(r'^' + re.escape(tool) + r':\s*\$\(call obj,([^)]+)\)', mk, re.M)
    if rule:
        sources += rule.group(1).split()
# A BPF program is rebuilt with its headers, and so is every C file that
# includes its generated skeleton (build/NAME.skel.h).
skel_users = {}
for src in sources:
    with open(src, errors='replace') as f:
        for name in inc_re.findall(f.read()):
            if name.endswith('.skel.h'):
                skel_users.setdefault(name, set()).add(src)
headers = {}
for src in sorted(sources):
    for h in includes(src, set()):
        headers.setdefault(h, set()).add(src)
for prog in sorted(os.listdir('bpf')):
    if prog.endswith('.bpf.c'):
        src = 'bpf/' + prog
        users = {src} | skel_users.get(prog[:-len('.bpf.c')] + '.skel.h', set())
        for h in includes(src, set()):
            headers.setdefault(h, set()).update(users)
for d in inc_dirs:
    for f in sorted(os.listdir(d)):
        p = os.path.join(d, f)
        if f.endswith('.h'):
            headers.setdefault(p, set())
for h in sorted(headers):
    print(h + ':', ' '.join(sorted(headers[h])))
