#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Keep libfdhandover(3) honest against the library it documents.

  check-man3.py MAP HEADER PAGE [CC ARGS...]

Fails (exit 1, one line per finding) unless
  - every fdh_* symbol of the version script MAP has a prototype in the
    page's SYNOPSIS, token for token the declaration in HEADER;
  - every fdh_* prototype in the SYNOPSIS is an exported symbol;
  - every symbol is described in DESCRIPTION;
  - VERSIONS lists each node of MAP with exactly its symbols;
  - with a compiler command after PAGE, the EXAMPLE compiles against HEADER
    (syntax and types only: nothing is linked or run).
Python standard library only; the page is read as troff source, as written
(.B/.BI/.BR lines, \\f and \\- escapes), not through groff.
"""
import os
import re
import subprocess
import sys
import tempfile


def map_nodes(path):
    """{node: [symbols]} of a GNU ld version script, in file order."""
    nodes, node = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.split("#")[0].strip()
        m = re.match(r"^([\w.]+)\s*\{", line)
        if m:
            node = m.group(1)
            nodes[node] = []
            continue
        m = re.match(r"^(fdh_\w+)\s*;", line)
        if m and node:
            nodes[node].append(m.group(1))
    return nodes


def tokens(decl):
    return re.findall(r"\w+|[^\s\w]", decl)


def header_prototypes(path):
    """{name: tokens of its declaration} for every fdh_* function declared."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # The extern "C" block is for C++ only; drop it before the braces go.
    text = re.sub(r"#ifdef __cplusplus.*?#endif", " ", text, flags=re.S)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    while True:  # struct, union and enum bodies, innermost first
        stripped = re.sub(r"\{[^{}]*\}", " ", text)
        if stripped == text:
            break
        text = stripped
    protos = {}
    for stmt in text.split(";"):
        m = re.search(r"\b(fdh_\w+)\s*\(", stmt)
        if m:
            protos[m.group(1)] = tokens(stmt)
    return protos


def macro_args(rest):
    """Arguments of a troff macro line: blank-separated, "quoted" allowed."""
    args, i = [], 0
    while i < len(rest):
        if rest[i] in " \t":
            i += 1
        elif rest[i] == '"':
            j, arg = i + 1, ""
            while j < len(rest):
                if rest[j] == '"' and rest[j + 1:j + 2] == '"':
                    arg, j = arg + '"', j + 2
                elif rest[j] == '"':
                    j += 1
                    break
                else:
                    arg, j = arg + rest[j], j + 1
            args.append(arg)
            i = j
        else:
            j = i
            while j < len(rest) and rest[j] not in " \t":
                j += 1
            args.append(rest[i:j])
            i = j
    return args


def unescape(s):
    s = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", s)
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\ ", " ")
    s = s.replace("\\(aq", "'").replace("\\(dq", '"').replace("\\e", "\\")
    return s


FONT_MACROS = {"B", "I", "SM", "SB"}          # arguments joined by blanks
ALT_MACROS = {"BI", "BR", "IB", "IR", "RB", "RI"}  # joined as they are


def sections(path):
    """{section name: list of (text line, raw line)} of a man page."""
    secs, name = {}, None
    for raw in open(path, encoding="utf-8"):
        raw = raw.rstrip("\n")
        if raw.startswith('.\\"'):
            continue
        m = re.match(r"^\.SH\s+(.*)", raw)
        if m:
            name = " ".join(macro_args(m.group(1)))
            secs[name] = []
            continue
        if name is None:
            continue
        m = re.match(r"^\.(\w+)\s*(.*)", raw)
        if m and m.group(1) in FONT_MACROS:
            text = " ".join(macro_args(m.group(2)))
        elif m and m.group(1) in ALT_MACROS:
            text = "".join(macro_args(m.group(2)))
        elif m or raw.startswith("'"):
            text = ""  # any other request or macro: no text of ours
        else:
            text = raw
        secs[name].append((unescape(text), raw))
    return secs


def synopsis_prototypes(lines):
    text = "\n".join(t for t, _ in lines if not t.lstrip().startswith("#"))
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    protos = {}
    for stmt in text.split(";"):
        m = re.search(r"\b(fdh_\w+)\s*\(", stmt)
        if m:
            if m.group(1) in protos:
                protos[m.group(1)] = None  # twice: reported below
            else:
                protos[m.group(1)] = tokens(stmt)
    return protos


def example_source(raw_lines):
    out, inside = [], False
    for _, raw in raw_lines:
        if raw.startswith(".EX"):
            inside = True
        elif raw.startswith(".EE"):
            if out:
                break  # the first example block is the program
            inside = False
        elif inside:
            out.append(unescape(raw))
    return "\n".join(out) + "\n"


def report(bad, what):
    """One TAP test point: the page matches, or each problem as a diagnostic."""
    print("TAP version 13\n1..1")
    for b in bad:
        print("# " + b.replace("\n", "\n# "))
    print("%s 1 libfdhandover.3 matches the header and the version script%s" % (
        "not ok" if bad else "ok", " # " + what if what and not bad else ""))
    return 1 if bad else 0


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    map_path, header_path, page_path, cc = argv[1], argv[2], argv[3], argv[4:]
    nodes = map_nodes(map_path)
    exported = [s for syms in nodes.values() for s in syms]
    header = header_prototypes(header_path)
    secs = sections(page_path)
    bad = []

    if not exported:
        bad.append(f"{map_path}: no fdh_* symbols found")
    for need in ("SYNOPSIS", "DESCRIPTION", "VERSIONS", "EXAMPLE"):
        if need not in secs:
            bad.append(f"{page_path}: no {need} section")
    if bad:
        return report(bad, "")

    synopsis = synopsis_prototypes(secs["SYNOPSIS"])
    for sym in exported:
        if sym not in header:
            bad.append(f"{sym}: exported by {map_path} but not declared in {header_path}")
        if sym not in synopsis:
            bad.append(f"{sym}: exported by {map_path} but missing from the SYNOPSIS of {page_path}")
        elif synopsis[sym] is None:
            bad.append(f"{sym}: declared twice in the SYNOPSIS")
        elif sym in header and synopsis[sym] != header[sym]:
            bad.append(f"{sym}: SYNOPSIS says '{' '.join(synopsis[sym])}', "
                       f"{header_path} says '{' '.join(header[sym])}'")
    for sym in synopsis:
        if sym not in exported:
            bad.append(f"{sym}: in the SYNOPSIS but not exported by {map_path}")

    description = "\n".join(t for t, _ in secs["DESCRIPTION"])
    for sym in exported:
        if not re.search(rf"\b{sym}\b", description):
            bad.append(f"{sym}: not described in DESCRIPTION")

    listed, node = {}, None
    for text, _ in secs["VERSIONS"]:
        for word in re.findall(r"\b(FDHANDOVER_[\w.]*\w|fdh_\w+)\b", text):
            if word.startswith("FDHANDOVER_"):
                node = word
                listed.setdefault(node, [])
            elif node:
                listed[node].append(word)
    for name, syms in nodes.items():
        if name not in listed:
            bad.append(f"VERSIONS: node {name} missing")
            continue
        for sym in sorted(set(syms) - set(listed[name])):
            bad.append(f"VERSIONS: {sym} missing under {name}")
        for sym in sorted(set(listed[name]) - set(syms)):
            bad.append(f"VERSIONS: {sym} listed under {name}, not in that node of {map_path}")
    for name in listed:
        if name not in nodes:
            bad.append(f"VERSIONS: node {name} is not in {map_path}")

    if cc:
        source = example_source(secs["EXAMPLE"])
        with tempfile.TemporaryDirectory() as tmp:
            c = os.path.join(tmp, "example.c")
            with open(c, "w", encoding="utf-8") as f:
                f.write(source)
            cmd = cc + ["-std=gnu11", "-fsyntax-only", "-Wall", "-Wextra",
                        "-Werror", "-I", os.path.dirname(os.path.abspath(header_path)), c]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                bad.append("EXAMPLE does not compile: " + " ".join(cmd) + "\n" +
                           res.stdout + res.stderr)

    return report(bad, f"{len(exported)} symbols in {len(nodes)} nodes, "
                       f"{len(synopsis)} prototypes in the SYNOPSIS")

if __name__ == "__main__":
    sys.exit(main(sys.argv))
