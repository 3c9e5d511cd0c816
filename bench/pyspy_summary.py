"""
Summarise a py-spy collapsed-stack file (`py-spy record --format raw
--threads --gil`, as `smtp_load.py --profile FILE` writes it):

    python bench/pyspy_summary.py FILE [--top 25]

Prints the share of samples per thread, per zWMS module (the deepest zwms/
frame of each stack; stacks without one are "twisted/stdlib"), the
inclusive share of the hottest zwms functions, and the hottest leaf
functions (self time).
"""

import argparse
import collections
import re

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def parse(path):
    """(thread, [(func, file)], count) for each line."""
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            thread = frames[0]
            parsed = []
            for fr in frames[1:]:
                m = FRAME.match(fr)
                parsed.append((m.group("func"), m.group("file")) if m else (fr, ""))
            yield thread, parsed, int(count)


def short_file(path):
    i = path.find("zwms/")
    if i >= 0:
        return path[i:]
    for mark in ("twisted/", "site-packages/", "python3.11/"):
        i = path.find(mark)
        if i >= 0:
            return path[i:]
    return path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    threads = collections.Counter()
    modules = collections.Counter()
    inclusive = collections.Counter()
    leaf = collections.Counter()
    total = 0
    for thread, frames, count in parse(a.file):
        name = re.sub(r"\s*\(\d+\)", "", thread).replace("thread", "").strip() or thread
        threads[name] += count
        total += count
        deepest = None
        seen = set()
        for func, path in frames:
            if "zwms/" in path:
                deepest = short_file(path)
                key = "%s (%s)" % (func, short_file(path))
                if key not in seen:
                    inclusive[key] += count
                    seen.add(key)
        modules[deepest or "twisted/stdlib (no zwms frame)"] += count
        if frames:
            func, path = frames[-1]
            leaf["%s (%s)" % (func, short_file(path))] += count
    if not total:
        print("no samples")
        return

    def show(title, counter, n):
        print("\n## %s" % title)
        for key, count in counter.most_common(n):
            print("%5.1f%%  %s" % (100.0 * count / total, key))

    print("%d samples (GIL-holding) in %s" % (total, a.file))
    show("threads", threads, 10)
    show("deepest zwms module in the stack", modules, a.top)
    show("inclusive, zwms functions", inclusive, a.top)
    show("self time, leaf functions", leaf, a.top)


if __name__ == "__main__":
    main()
