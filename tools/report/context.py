# SPDX-License-Identifier: MIT
"""What every section of the report needs: the results, where plots go, and the run's mode."""

import os

from report_text import not_measured


class Context:
    def __init__(self, results, out_dir, quick):
        self.results = results
        self.out_dir = out_dir
        self.quick = quick
        self.plots = []  # file names written, in order

    def plot_path(self, name):
        """Where plot `name` (a .png file name) goes; it is recorded as written."""
        self.plots.append(name)
        return os.path.join(self.out_dir, name)

    def image(self, name, alt):
        return "![%s](%s)\n" % (alt, name)

    def unavailable(self, program):
        """The 'not measured' paragraph if `program` has no results, else None."""
        if self.results.program(program) is not None:
            return None
        p = self.results.programs.get(program)
        hint = ("Build it with `cmake --build build --target %s` (or `./exo report`, which builds "
                "every benchmark of the tree) once its module is on the branch." % program)
        return not_measured(program, hint, p.problem if p else None)
