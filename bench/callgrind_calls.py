#!/usr/bin/env python3
"""Counts calls to the allocator in a callgrind output file (bench/profile).

Prints "allocs=N frees=M": calls of malloc/calloc/realloc/aligned allocations and of free,
over every thread and caller (operator new counts once, through its malloc)."""
import re
import sys

ALLOC = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}
FREE = {"free"}


def count(path: str) -> tuple[int, int]:
    names: dict[str, str] = {}
    allocs = frees = 0
    target = None
    ref = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("cfn="):
                m = ref.match(line.rstrip("\n"))
                if m:
                    if m.group(2) is not None:
                        names[m.group(1)] = m.group(2)
                    target = names.get(m.group(1), "")
                continue
            if line.startswith("fn="):
                m = ref.match(line.rstrip("\n"))
                if m and m.group(2) is not None:
                    names[m.group(1)] = m.group(2)
                continue
            if line.startswith("calls=") and target is not None:
                count = int(line[6:].split()[0])
                base = target.split("'")[0]
                if base in ALLOC:
                    allocs += count
                elif base in FREE:
                    frees += count
    return allocs, frees


def main(paths: list[str]) -> None:
    """One file per thread (callgrind --separate-threads=yes): the first is the main thread."""
    counts = [count(p) for p in paths]
    allocs = sum(a for a, _ in counts)
    frees = sum(f for _, f in counts)
    print(f"allocs={allocs} frees={frees} allocs_main={counts[0][0]}")


if __name__ == "__main__":
    main(sorted(sys.argv[1:]))
