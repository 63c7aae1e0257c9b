"""Collects the training-efficiency study's runs into results.csv and gap-vs-time.png.

    python3 summarise.py RUN_DIR OUT_DIR

RUN_DIR holds, per run NAME (written by run-study.sh): NAME.toml, NAME.train.log and NAME.eval.md
(`pfn eval`, 1000 held-out gp-1d datasets, query = point 50). A run's wall-clock budget is 10 minutes
unless its name ends in "-<M>min". Rates (idle datasets/s on 2 threads) come from rates.csv beside
this script: `recipe shape,steps per second` as measured before the study.
"""
import csv, glob, os, re, sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker

run_dir, out_dir = sys.argv[1], sys.argv[2]
rows = []
for md in sorted(glob.glob(os.path.join(run_dir, "*.eval.md"))):
    name = os.path.basename(md)[: -len(".eval.md")]
    m = re.search(r"-(\d+)min$", name)
    minutes = int(m.group(1)) if m else 10
    recipe = name[: m.start()] if m else name
    gaps, mean_gap = {}, None
    for line in open(md):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            gaps[int(cells[0])] = float(cells[3].split()[0])
        if len(cells) == 4 and cells[0] == "mean":
            mean_gap = float(cells[3])
    cfg = open(os.path.join(run_dir, name + ".toml")).read()
    get = lambda key: re.search(rf"^{key} = \"?([^\"\n]+)\"?", cfg, re.M).group(1)
    log = open(os.path.join(run_dir, name + ".train.log")).read()
    trained = re.findall(r"trained (\d+) steps \((\d+) datasets\)", log)
    rows.append(
        dict(
            run=name,
            recipe=recipe,
            minutes=minutes,
            targets=get("targets"),
            lr=get("lr"),
            batch=get("batch_size"),
            model=f"{get('emsize')}/{get('nlayers')}/{get('nhid')}",
            buckets=get("buckets"),
            split=get("split"),
            precision=(re.search(r'^precision = "(\w+)"', cfg, re.M) or [None, "f32"])[1],
            steps=get("steps"),
            datasets=int(get("steps")) * int(get("batch_size")),
            mean_gap=mean_gap,
            **{f"gap_n{n}": g for n, g in sorted(gaps.items())},
        )
    )
os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)

fig, ax = plt.subplots(figsize=(8, 5))
by_recipe = {}
for r in rows:
    by_recipe.setdefault(r["recipe"], []).append(r)
collapsed = []
for recipe, rs in sorted(by_recipe.items()):
    rs.sort(key=lambda r: r["minutes"])
    if max(r["mean_gap"] for r in rs) > 1.2:
        collapsed.append(f"{recipe}: {max(r['mean_gap'] for r in rs):.2f} (off the axis)")
        continue
    ax.plot([r["minutes"] for r in rs], [r["mean_gap"] for r in rs], "o-", label=recipe)
# The PyTorch reference (automl/PFNs) on the same protocol, ../shared/docs/reference-results.md.
ax.plot([10, 30], [0.902, 0.546], "k--", marker="s", label="reference automl/PFNs (PyTorch)")
ax.set_xlabel("training budget (minutes of the idle 2-core machine)")
ax.set_ylabel("mean gap to the exact GP (nats)")
ax.set_title("gp-1d: mean Prior-Data NLL gap over n in {0,1,2,3,5,10,20,30,40,50}")
ax.set_xscale("log")
ax.set_xticks([10, 30])
ax.set_xticklabels(["10", "30"])
ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
ax.set_ylim(0, 1.0)
if collapsed:
    ax.text(0.02, 0.97, "\n".join(collapsed), transform=ax.transAxes, va="top", fontsize=8)
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(os.path.join(out_dir, "gap-vs-time.png"), dpi=110)
for r in rows:
    print(r["run"], r["minutes"], r["mean_gap"])
