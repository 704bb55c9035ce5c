#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The house rules a newcomer relies on, checked on the tree (ctest house.tree):

- every source file carries an SPDX line (`SPDX-License-Identifier: MIT`) in its first two lines
  (after a shebang);
- one naming rule for private headers: a header of a library module outside its include/
  directory is private to the module and is named `*_p.h`;
- no module reaches into another's private headers (an #include of a `*_p.h` name that only
  another module has);
- the README's Layout table names every top-level directory of the tree.

With --fix-spdx, adds the missing SPDX lines instead of failing on them.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ["vcode", "pipes", "dpf", "runtime", "ash", "specializer"]
SPDX = "SPDX-License-Identifier: MIT"
SOURCE = re.compile(r"(\.(cpp|h|c|py|cmake|in|sh)|/CMakeLists\.txt|^CMakeLists\.txt|^exo|^\.ci/run)$")


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        return [f for f in out.splitlines() if os.path.exists(os.path.join(ROOT, f))]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        files = []
        for d, dirs, names in os.walk(ROOT):
            dirs[:] = [x for x in dirs if not x.startswith(".") and not x.startswith("build")]
            files += [os.path.relpath(os.path.join(d, n), ROOT) for n in names]
        return files


def comment_for(path):
    return "#" if re.search(r"(\.py|\.cmake|\.cmake\.in|\.sh|CMakeLists\.txt|^exo|^\.ci/run)$", path) else "//"


def check_spdx(files, fix):
    problems = []
    for f in files:
        if not SOURCE.search(f) or "/corpus/" in f:
            continue
        path = os.path.join(ROOT, f)
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
        if any(SPDX in line for line in lines[:2]):
            continue
        if not fix:
            problems.append(f"{f}: no SPDX line ({SPDX}) in its first two lines")
            continue
        at = 1 if lines and lines[0].startswith("#!") else 0
        lines.insert(at, f"{comment_for(f)} {SPDX}")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
    return problems


def private_headers(files):
    problems, private = [], {}
    for f in files:
        parts = f.split("/")
        if parts[0] not in MODULES or not f.endswith(".h") or "include" in parts:
            continue
        if "examples" in parts:  # example programs' own headers, not the library's
            continue
        if not f.endswith("_p.h"):
            problems.append(f"{f}: a private header of {parts[0]}/ not named *_p.h")
        private.setdefault(os.path.basename(f), set()).add(parts[0])
    include = re.compile(r'#include\s+"([^"]+_p\.h)"')
    for f in files:
        parts = f.split("/")
        if parts[0] not in MODULES or not re.search(r"\.(cpp|h)$", f):
            continue
        with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
            for name in include.findall(fh.read()):
                owners = private.get(os.path.basename(name), set())
                if owners and parts[0] not in owners:
                    problems.append(f"{f}: includes {name}, private to {', '.join(sorted(owners))}/")
    return problems


def layout_table(files):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    start = readme.find("## Layout")
    table = readme[start:readme.find("\n## ", start + 1)] if start >= 0 else ""
    if not table:
        return ["README.md: no Layout section"]
    tops = sorted({f.split("/")[0] for f in files if "/" in f and not f.startswith(".")})
    return [f"README.md: the Layout table does not name {t}/" for t in tops
            if f"`{t}/" not in table]


def main():
    fix = "--fix-spdx" in sys.argv
    files = tracked_files()
    problems = check_spdx(files, fix) + private_headers(files) + layout_table(files)
    for p in problems:
        print(p)
    print(f"{len(problems)} problems in {len(files)} files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
