"""The diagnosis benchmark: run ``cnnbench diagnose`` over the corpus of broken and healthy
recipes (benchmarks/diagnose_corpus/) on several seeds, and score its verdicts.

Scoring, per run (one recipe, one seed):
- a broken recipe's run is *named* when the verdict's root cause (``Diagnosis.cause.key``) is
  one of the causes the recipe declares, *mis-attributed* when it is another cause, *missed*
  when there is no verdict at all (nothing FAILs and no symptom);
- a healthy recipe's run counts the checks that FAIL and that WARN;
- every run is searched for advice that contradicts its own evidence (see ``contradictions``).

    .venv/bin/python scripts/bench_diagnose.py --threads 1 [--seeds 0-2] [--steps 50] [--only lines/]

Datasets are generated once into --data-dir (default data/diagnose-corpus/).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is data, not an installed package

import torch  # noqa: E402

from benchmarks.diagnose_corpus import DATASETS, all_cases  # noqa: E402
from cnnbench.bench.diagnose import FAIL, WARN, diagnose  # noqa: E402
from cnnbench.bench.diagnose.thresholds import DEAD_LAYER_FAIL, WEIGHT_SLOW  # noqa: E402
from cnnbench.bench.protocol import parse_seeds  # noqa: E402
from cnnbench.data.generate import build_spec, write_dataset  # noqa: E402
from cnnbench.data.h5file import open_dataset  # noqa: E402


def contradictions(d) -> list[str]:
    """Advice that says the opposite of the run's own evidence."""
    out = []
    values = {c.name: c.values for c in d.checks}
    nan = (bool(values.get("weights update", {}).get("nonfinite"))
           or any(c.name == "loss trend" and "NaN" in c.evidence for c in d.checks)
           or bool(values.get("collapse", {}).get("nonfinite")))
    for c in d.checks:
        if c.status in (FAIL, WARN) and nan and ("too small" in c.advice or "raise the learning rate" in c.advice):
            out.append(f"{c.name}: says the learning rate is too small while the run went NaN")
    top = d.cause.key if d.cause else None
    dead = values.get("dead ReLUs", {})
    if top in ("lr-too-high", "lr-too-low") and (dead.get("init_worst_dead_share") or 0) >= DEAD_LAYER_FAIL:
        out.append(f"verdict {top} while units are dead before any step")
    median = values.get("weights update", {}).get("median")
    if top == "lr-too-high" and not nan and median is not None and median < WEIGHT_SLOW:
        out.append("verdict lr-too-high while the weights barely moved")
    trend = values.get("loss trend", {})
    moved = median is not None and median >= WEIGHT_SLOW  # else a "rising" loss is batch noise
    if top == "lr-too-low" and (nan or (moved and (trend.get("relative_drop") or 0) < -0.05)):
        out.append("verdict lr-too-low while the weights move and the loss rises, or it diverges")
    return out


def ensure_data(data_dir: Path) -> dict[str, Path]:
    paths = {}
    for name, (family, params) in DATASETS.items():
        path = data_dir / f"{name}.h5"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            print(f"generating {path} ...", file=sys.stderr)
            write_dataset(build_spec(family, dict(params)), path)
        paths[name] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-2", help="training seeds (default 0-2)")
    parser.add_argument("--steps", type=int, default=50, help="diagnose --steps (default 50)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a busy machine)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "diagnose-corpus")
    parser.add_argument("--only", default="", help="only cases whose name contains this")
    parser.add_argument("--json", type=Path, help="write every run's verdict and counts here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    paths = ensure_data(args.data_dir)
    datasets = {k: open_dataset(p) for k, p in paths.items()}
    cases = [c for c in all_cases() if args.only in c.name]

    started = time.perf_counter()
    rows, runs = [], []
    width = max(len(c.name) for c in cases)
    for case in cases:
        outcomes = []
        for seed in seeds:
            cpu0 = time.process_time()
            d = diagnose(datasets[case.dataset], case.make, name=case.name, seed=seed, steps=args.steps)
            cpu_s = time.process_time() - cpu0
            counts = d.counts()
            top = d.cause.key if d.cause else None
            if case.healthy:
                outcome = "fail" if counts[FAIL] else "warn" if counts[WARN] else "clean"
            else:
                outcome = "named" if top in case.causes else "missed" if top is None else "mis-attributed"
            bad = contradictions(d)
            run = {"case": case.name, "seed": seed, "expected": list(case.causes), "verdict": top,
                   "outcome": outcome, "fail": counts[FAIL], "warn": counts[WARN], "seconds": d.wall_time_s, "cpu_seconds": round(cpu_s, 3),
                   "contradictions": bad,
                   "fails": [c.name for c in d.checks if c.status == FAIL],
                   "warns": [c.name for c in d.checks if c.status == WARN]}
            runs.append(run)
            outcomes.append(run)
        expected = ",".join(case.causes) or "healthy"
        per_seed = " ".join(f"{r['verdict'] or '-'}" if not case.healthy else
                            (f"{r['outcome']}" + (f"({','.join(r['fails'] + r['warns'])})"
                                                  if r['outcome'] != 'clean' else ""))
                            for r in outcomes)
        summary = (f"named {sum(r['outcome'] == 'named' for r in outcomes)}/{len(outcomes)}" if not case.healthy
                   else f"FAIL {sum(r['fail'] > 0 for r in outcomes)}/{len(outcomes)}, "
                        f"WARN {sum(r['warn'] > 0 for r in outcomes)}/{len(outcomes)}")
        slowest = max(r["seconds"] for r in outcomes)
        line = f"{case.name:<{width}}  {expected:<19} {summary:<22} {slowest:5.1f}s  {per_seed}"
        if any(r["contradictions"] for r in outcomes):
            line += "  CONTRADICTS: " + "; ".join(sorted({x for r in outcomes for x in r["contradictions"]}))
        print(line, flush=True)
        rows.append(line)
    wall = time.perf_counter() - started

    broken = [r for r in runs if r["expected"]]
    healthy = [r for r in runs if not r["expected"]]
    broken_cases = {r["case"] for r in broken}
    named_all = {c for c in broken_cases if all(r["outcome"] == "named" for r in broken if r["case"] == c)}

    def share(n, d):
        return f"{n}/{d} ({100 * n / d:.1f}%)" if d else "0/0"

    print()
    print(f"broken runs named for their cause: {share(sum(r['outcome'] == 'named' for r in broken), len(broken))}; "
          f"mis-attributed {sum(r['outcome'] == 'mis-attributed' for r in broken)}, "
          f"missed {sum(r['outcome'] == 'missed' for r in broken)}")
    print(f"broken recipes named on every seed: {share(len(named_all), len(broken_cases))}")
    print(f"healthy runs with a FAIL: {share(sum(r['fail'] > 0 for r in healthy), len(healthy))}; "
          f"with a WARN: {share(sum(r['warn'] > 0 for r in healthy), len(healthy))}")
    print(f"runs whose advice contradicts their evidence: {sum(bool(r['contradictions']) for r in runs)}")
    secs = [r["seconds"] for r in runs]
    cpu = [r["cpu_seconds"] for r in runs]
    print(f"{len(runs)} diagnose runs ({len(cases)} recipes x {len(seeds)} seeds, --steps {args.steps}); "
          f"wall per run: slowest {max(secs):.1f} s, mean {sum(secs) / len(secs):.1f} s; CPU time per run: "
          f"slowest {max(cpu):.1f} s, mean {sum(cpu) / len(cpu):.1f} s; total wall {wall:.0f} s; "
          f"torch threads {torch.get_num_threads()}, torch {torch.__version__}, {platform.machine()}, "
          f"{datetime.date.today()}")
    fingerprints = {k: ds.fingerprint[:12] for k, ds in datasets.items()}
    print("datasets: " + ", ".join(f"{k} {v}" for k, v in fingerprints.items()))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "fingerprints": fingerprints, "wall_s": wall}, indent=1))


if __name__ == "__main__":
    main()
