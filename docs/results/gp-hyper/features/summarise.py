"""Gap to the oracle per number of features and context size: the PFN(s) against NUTS 256+256.

Reads the results.json of `pfn reproduce gp-hyper --features D` runs (one directory per D, named
d1 .. d5 under the given root) and prints a Markdown table: the mean gap of every PFN (one at a time, not the batched rows,
which give the same numbers) and of NUTS 256+256 per n, and how many cells the PFN loses.

    python3 docs/results/gp-hyper/features/summarise.py RUNS_ROOT
"""

import json
import pathlib
import sys


def load(root):
    runs = {}
    for d in sorted(pathlib.Path(root).glob("d*/results.json")):
        r = json.loads(d.read_text())
        runs[r["num_features"]] = r
    return runs


def mean_of(stat):
    return stat["mean"]


def main(root):
    runs = load(root)
    if not runs:
        sys.exit(f"no d*/results.json under {root}")
    first = next(iter(runs.values()))
    sizes = first["sizes"]
    pfns = [m["name"] for m in first["methods"] if m["kind"]["kind"] == "pfn"]
    print("| features | method | " + " | ".join(f"n={n}" for n in sizes) + " | mean |")
    print("|---:|---|" + "---:|" * (len(sizes) + 1))
    worse = []
    for f, r in sorted(runs.items()):
        by_name = {m["name"]: m for m in r["methods"]}
        nuts = by_name["NUTS 256+256"]
        for name in pfns + ["NUTS 256+256"]:
            m = by_name[name]
            gaps = [mean_of(g) for g in m["gap"]]
            print(f"| {f} | {name} | " + " | ".join(f"{g:.3f}" for g in gaps) + f" | {mean_of(m['overall_gap']):.3f} |")
        for name in pfns:
            m = by_name[name]
            for n, a, b in zip(sizes, m["gap"], nuts["gap"]):
                if mean_of(a) > mean_of(b):
                    worse.append((f, name, n))
    print()
    print(f"PFN worse than NUTS 256+256 at {len(worse)} of {len(runs) * len(sizes) * len(pfns)} (features, n, model) cells.")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
