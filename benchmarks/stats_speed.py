"""Time ``rlmu report`` on a synthetic study, next to rliable doing the same statistics.

The default study is paper-sized: 10 variants x 10 seeds x 300 evaluation points on ``push`` (run
directories written by ``tests/study_factory.py``, exactly as the trainer writes them); ``--large`` is
14 variants x 100 seeds x 300 points. ``rlmu report`` goes from the CSVs to the finished report.html:
aggregation, every statistics table in both views (all seeds, converged seeds only) with 50,000
bootstrap repetitions for aggregate metrics and probability of improvement and 2,000 for IQM curves and
performance profiles, the claims (with their seeds-needed power calculations), the figures and the HTML.
It runs in a child process, so its peak memory (maximum resident set size) is measured on its own.
Targets: <= 60 s, and for the large study peak memory <= 4 GB.

rliable (seeded through ``np.random.seed``, since it ignores its ``random_state``) is timed on the
all-seeds view only, for the same work item by item. Where the full item takes many minutes the script
times a stated subset and extrapolates linearly (bootstrap cost is linear in repetitions, methods and
pairs); the output says which numbers are extrapolated. ``--skip-rliable`` leaves it out.

    .venv/bin/python benchmarks/stats_speed.py [--variants 10 --seeds 10 --epochs 300 --full-rliable]
    .venv/bin/python benchmarks/stats_speed.py --large --skip-rliable
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from study_factory import VariantSpec, write_study  # noqa: E402

from rlmu.train.variants import VARIANTS  # noqa: E402

# The paper grid's variants first (the presets' order), as many as --variants asks for.
VARIANT_NAMES = tuple(VARIANTS)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--reps", type=int, default=50_000)
    ap.add_argument("--curve-reps", type=int, default=2_000)
    ap.add_argument("--full-rliable", action="store_true", help="run rliable on every item in full (slow)")
    ap.add_argument("--skip-rliable", action="store_true", help="time rlmu only")
    ap.add_argument("--large", action="store_true", help="14 variants x 100 seeds x 300 points")
    args = ap.parse_args()
    if args.large:
        args.variants, args.seeds, args.epochs = 14, 100, 300
    if not 1 <= args.variants <= len(VARIANT_NAMES):
        ap.error(f"--variants must be in 1..{len(VARIANT_NAMES)}")

    rng = np.random.default_rng(0)
    variants = {
        name: VariantSpec(
            p_converge=float(rng.uniform(0.3, 0.9)),
            plateau=float(rng.uniform(0.6, 0.95)),
            speed=float(rng.uniform(0.8, 2.0)),
        )
        for name in VARIANT_NAMES[: args.variants]
    }
    load0 = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "paper_sized"
        t_write, _ = timed(
            lambda: write_study(study, variants=variants, seeds=args.seeds, epochs=args.epochs)
        )
        print(
            f"study: {args.variants} variants x {args.seeds} seeds x {args.epochs} evaluation points "
            f"(push), written in {t_write:.1f} s"
        )
        cmd = [sys.executable, "-m", "rlmu", "report", str(study), "--reps", str(args.reps)]
        cmd += ["--curve-reps", str(args.curve_reps)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        t_report, proc = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, env=env))
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for line in proc.stdout.splitlines():
            print("  " + line.replace(str(study), "STUDY"))
        print(
            f"rlmu report, CSVs -> report.html (both views, claims, figures): {t_report:.1f} s wall, "
            f"{usage.ru_utime + usage.ru_stime:.1f} s CPU, peak memory {usage.ru_maxrss / 2**20:.2f} GB "
            f"(targets: <= 60 s, <= 4 GB); load average before: {load0}"
        )
        if args.skip_rliable:
            return

        # ---- the same statistics, item by item, all-seeds view: rlmu.stats vs rliable
        from rlmu.report.aggregate import load_aggregation
        from rlmu.report.tables import curve_arrays, final_scores
        from rlmu.stats.bootstrap import aggregate_intervals, iqm_curves, probability_of_improvement
        from rlmu.stats.metrics import AGGREGATES
        from rlmu.stats.profiles import performance_profiles

        agg = load_aggregation(study)
        scores = final_scores(agg, "all", [])["push"]
        curves = {v: y[:, None, :] for v, (_, y) in curve_arrays(agg, "all")["push"].items()}
        taus = np.linspace(0, 1, 51)
        names = list(scores)
        n_pairs = len(names) * (len(names) - 1)
        ours = {
            "aggregates": timed(lambda: aggregate_intervals(scores, AGGREGATES, reps=args.reps))[0],
            "poi": timed(lambda: probability_of_improvement(scores, reps=args.reps))[0],
            "profiles": timed(lambda: performance_profiles(scores, taus, reps=args.curve_reps))[0],
            "curves": timed(lambda: iqm_curves(curves, reps=args.curve_reps))[0],
        }

        import warnings

        warnings.filterwarnings("ignore")
        from rliable import library as rly
        from rliable import metrics as rm

        full = args.full_rliable

        def agg_fn(x):
            return np.array(
                [
                    rm.aggregate_iqm(x),
                    rm.aggregate_mean(x),
                    rm.aggregate_median(x),
                    rm.aggregate_optimality_gap(x),
                ]
            )

        sub_methods = names if full else names[:2]
        np.random.seed(0)
        t, _ = timed(
            lambda: rly.get_interval_estimates({m: scores[m] for m in sub_methods}, agg_fn, reps=args.reps)
        )
        theirs = {
            "aggregates": (t * len(names) / len(sub_methods), f"{len(sub_methods)} of {len(names)} methods")
        }
        pairs = [(a, b) for a in names for b in names if a != b]
        sub_pairs = pairs if full else pairs[:2]
        poi_reps = args.reps if full else 5_000
        np.random.seed(0)
        t, _ = timed(
            lambda: rly.get_interval_estimates(
                {f"{a},{b}": (scores[a], scores[b]) for a, b in sub_pairs},
                rm.probability_of_improvement,
                reps=poi_reps,
            )
        )
        theirs["poi"] = (
            t * len(pairs) / len(sub_pairs) * args.reps / poi_reps,
            f"{len(sub_pairs)} of {n_pairs} pairs at {poi_reps} reps",
        )
        np.random.seed(0)
        t, _ = timed(lambda: rly.create_performance_profile(scores, taus, reps=args.curve_reps))
        theirs["profiles"] = (t, "")
        sub_c = names if full else names[:1]
        c_reps = args.curve_reps if full else min(100, args.curve_reps)
        # rliable's recipe for IQM curves (its README): the IQM at every evaluation point.
        iqm_fn = lambda s: np.array([rm.aggregate_iqm(s[..., k]) for k in range(s.shape[-1])])  # noqa: E731
        np.random.seed(0)
        t, _ = timed(lambda: rly.get_interval_estimates({m: curves[m] for m in sub_c}, iqm_fn, reps=c_reps))
        theirs["curves"] = (
            t * len(names) / len(sub_c) * args.curve_reps / c_reps,
            f"{len(sub_c)} of {len(names)} methods at {c_reps} reps",
        )

    print(f"\nsame work, all-seeds view only ({len(names)} methods, {args.seeds} runs, 1 task):")
    print(f"{'item':<44} {'rlmu.stats':>10} {'rliable':>10}  rliable measured on")
    items = {
        "aggregates": f"4 aggregate metrics, {args.reps} reps",
        "poi": f"probability of improvement, {n_pairs} pairs, {args.reps} reps",
        "profiles": f"performance profiles, 51 taus, {args.curve_reps} reps",
        "curves": f"IQM curves, {curves[names[0]].shape[-1]} points, {args.curve_reps} reps",
    }
    tot_ours = tot_theirs = 0.0
    for k, label in items.items():
        t_r, note = theirs[k]
        tot_ours += ours[k]
        tot_theirs += t_r
        mark = "*" if note else " "
        print(f"{label:<44} {ours[k]:>9.1f}s {t_r:>9.1f}s{mark} {note or 'full item'}")
    print(f"{'total':<44} {tot_ours:>9.1f}s {tot_theirs:>9.1f}s")
    if not full:
        print("* extrapolated linearly from the subset named (run with --full-rliable to measure everything)")


if __name__ == "__main__":
    main()
