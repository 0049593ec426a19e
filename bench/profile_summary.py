"""Summarises a py-spy `--format raw` profile (collapsed stacks): where the samples of each thread go.

    python -m bench.profile_summary PROFILE.txt [--top 25]

Prints, per thread, the share of samples, then the functions with the most samples anywhere on
the stack (inclusive) and at the top of the stack (self), as docs/PERFORMANCE.md cites them.
"""

from __future__ import annotations

import argparse
import collections
import re


def load(path: str) -> list[tuple[list[str], int]]:
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            frames, _, count = line.rpartition(" ")
            stacks.append((frames.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`; line numbers vary between samples."""
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    func, path = m.groups()
    return f"{func} ({path.rsplit('/', 1)[-1]})"


def summarise(path: str, top: int = 25) -> str:
    stacks = load(path)
    total = sum(c for _, c in stacks) or 1
    threads = collections.Counter()
    inclusive = collections.Counter()
    selfs = collections.Counter()
    for frames, count in stacks:
        thread = frames[0] if frames and (frames[0].startswith("thread") or frames[0].startswith("process")) else "?"
        threads[thread] += count
        seen = set()
        for f in frames[1:]:
            s = short(f)
            if s not in seen:
                inclusive[s] += count
                seen.add(s)
        if len(frames) > 1:
            selfs[short(frames[-1])] += count
    lines = [f"{path}: {total} samples"]
    lines.append("threads:")
    lines += [f"  {100 * c / total:5.1f}%  {t}" for t, c in threads.most_common(12)]
    lines.append("inclusive (on the stack):")
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top)]
    lines.append("self (top of the stack):")
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in selfs.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarise(args.profile, args.top))


if __name__ == "__main__":
    main()
