#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs one tool test: a data file (a vcode listing, a filter file, or a plain .test file) whose
comment lines say what to run and what the output must look like, in the manner of LLVM's lit
and FileCheck. A directive is a line that starts (after blanks and a comment marker: ';', '#'
or '//') with a keyword and a colon:

  RUN: vdump %s --run fib 20   a command (split like a shell would, no shell); each RUN starts a
                               step, and the directives after it, up to the next RUN, are its own
  STDIN: PATH                  the step's standard input
  EXIT: N                      its expected exit status (default 0)
  CHECK: REGEX                 must match its stdout, after the previous CHECK's match
  CHECK-ERR: REGEX             the same, in its stderr
  CHECK-NOT: REGEX             must match neither its stdout nor its stderr
  REQUIRES: PROGRAM            skip the test unless PROGRAM is on PATH
  HOST: REGEX                  skip the test unless this machine (uname -m) matches REGEX
  SKIP-UNLESS: COMMAND         skip the test, with COMMAND's output as the reason, unless it
                               succeeds (e.g. perf allowed to record on this machine)

REGEXes are Python's, with '.' matching newlines too (as in CMake's PASS_REGULAR_EXPRESSION).
Substitutions: %s this file, %S its folder, %t a fresh scratch folder, %examples the example
listings (tools/examples), %example the listing a per-example test runs on; and for every
--tool NAME=PATH, a word NAME of a command is PATH.

Exit status: 0 pass, 1 fail (with the command, its output and the failed check), 77 skipped.
"""

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
DIRECTIVE = re.compile(r"^\s*(?:;+|#+|//)\s*(RUN|STDIN|EXIT|CHECK|CHECK-ERR|CHECK-NOT|REQUIRES|"
                       r"SKIP-UNLESS|HOST):\s?(.*)$")


class Step:
    def __init__(self, command, line):
        self.command = command
        self.line = line
        self.stdin = None
        self.exit = 0
        self.checks = []  # (stream, regex, line): stream 'out' or 'err'
        self.nots = []    # (regex, line)


def parse(path):
    """The test's steps, required programs and skip probes."""
    steps, requires, probes, hosts = [], [], [], []
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            m = DIRECTIVE.match(text.rstrip("\r\n"))  # blanks at the end are the pattern's
            if not m:
                continue
            key, value = m.group(1), m.group(2)
            if key == "RUN":
                steps.append(Step(value, number))
            elif key == "REQUIRES":
                requires.append(value)
            elif key == "SKIP-UNLESS":
                probes.append(value)
            elif key == "HOST":
                hosts.append(value)
            elif not steps:
                raise SystemExit(f"{path}:{number}: {key} before any RUN")
            elif key == "STDIN":
                steps[-1].stdin = value
            elif key == "EXIT":
                steps[-1].exit = int(value)
            elif key == "CHECK":
                steps[-1].checks.append(("out", value, number))
            elif key == "CHECK-ERR":
                steps[-1].checks.append(("err", value, number))
            else:
                steps[-1].nots.append((value, number))
    if not steps:
        raise SystemExit(f"{path}: no RUN line")
    return steps, requires, probes, hosts


def substitute(text, subs):
    # Longest names first, so that %examples is not read as %example + "s".
    for name in sorted(subs, key=len, reverse=True):
        text = text.replace(name, subs[name])
    return text


def command_line(text, subs, tools, emulator):
    """The command's words; a program built here runs from its build path (through the
    emulator, if any, when it is the command itself)."""
    words = [tools.get(w, w) for w in shlex.split(substitute(text, subs))]
    if words and words[0] in tools.values():
        words[0:0] = emulator
    return words


def run(words, stdin_path):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.run(words, stdin=stdin, capture_output=True, timeout=600)
    finally:
        if stdin_path:
            stdin.close()
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def report(path, step, words, status, out, err, why):
    print(f"{path}:{step.line}: {why}")
    print(f"command: {shlex.join(words)}")
    print(f"exit status: {status}\n--- stdout\n{out}--- stderr\n{err}---")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("test")
    ap.add_argument("--tool", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--examples", default="")
    ap.add_argument("--example", default="")
    ap.add_argument("--scratch", help="the folder %%t names (default: a temporary one)")
    ap.add_argument("--emulator", action="append", default=[], metavar="WORD",
                    help="a word of the command that runs the programs built here (a cross "
                         "build's qemu), in order: --emulator=qemu-aarch64 --emulator=-L ...")
    args = ap.parse_args()

    path = os.path.abspath(args.test)
    tools = dict(t.split("=", 1) for t in args.tool)
    emulator = args.emulator
    steps, requires, probes, hosts = parse(path)
    for program in requires:
        if not shutil.which(program):
            print(f"SKIPPED: {program} is not installed (on PATH)")
            return SKIP
    machine = platform.machine()
    for host in hosts:
        if not re.fullmatch(host, machine):
            print(f"SKIPPED: for {host} hosts, this one is {machine}")
            return SKIP

    scratch = args.scratch or tempfile.mkdtemp(prefix="exojit-tool-test-")
    if args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
    subs = {"%s": path, "%S": os.path.dirname(path), "%t": scratch,
            "%examples": args.examples, "%example": args.example}

    for probe in probes:
        words = command_line(probe, subs, tools, emulator)
        try:
            status, out, err = run(words, None)
        except OSError as e:
            status, out, err = -1, "", str(e)
        if status != 0:
            print(f"SKIPPED: `{shlex.join(words)}` failed (exit status {status}): "
                  f"{(err or out).strip()}")
            return SKIP

    for step in steps:
        words = command_line(step.command, subs, tools, emulator)
        stdin = substitute(step.stdin, subs) if step.stdin else None
        try:
            status, out, err = run(words, stdin)
        except (OSError, subprocess.TimeoutExpired) as e:
            report(path, step, words, "-", "", "", f"cannot run the command: {e}")
            return 1
        if status != step.exit:
            report(path, step, words, status, out, err,
                   f"expected exit status {step.exit}, got {status}")
            return 1
        at = {"out": 0, "err": 0}
        for stream, regex, line in step.checks:
            text = out if stream == "out" else err
            m = re.compile(regex, re.DOTALL).search(text, at[stream])
            if not m:
                where = "stdout" if stream == "out" else "stderr"
                report(path, step, words, status, out, err,
                       f"line {line}: {where} has no match for /{regex}/ after offset "
                       f"{at[stream]}")
                return 1
            at[stream] = m.end()
        for regex, line in step.nots:
            r = re.compile(regex, re.DOTALL)
            for text in (out, err):
                m = r.search(text)
                if m:
                    report(path, step, words, status, out, err,
                           f"line {line}: /{regex}/ must not match, but matches {m.group(0)!r}")
                    return 1
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
