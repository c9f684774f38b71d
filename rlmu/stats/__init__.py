"""Statistics of the evaluation protocol (METHODS sections 4 and 5): pure functions over arrays.

Scores are normalised to [0, 1] and arranged ``runs x tasks`` (curves: ``runs x tasks x T``); dicts map a
method name to its array. rliable (Agarwal et al. 2021) is the reference; ``tests/test_stats_vs_rliable.py``
checks every estimate against it. The claims of the paper table are declarations in ``claims``, judged
through ``evidence`` (p-values that invert the intervals, Holm's correction) and ``power`` (seeds needed);
``simulation`` measures their error rates (``docs/statistics.md``).
"""

from rlmu.stats.bootstrap import Interval, aggregate_intervals, iqm_curves, probability_of_improvement
from rlmu.stats.convergence import convergence_table, fisher_exact, pairwise_fisher, wilson_interval
from rlmu.stats.metrics import AGGREGATES, iqm, mean, median, optimality_gap
from rlmu.stats.profiles import performance_profiles

__all__ = [
    "AGGREGATES",
    "Interval",
    "aggregate_intervals",
    "convergence_table",
    "fisher_exact",
    "iqm",
    "iqm_curves",
    "mean",
    "median",
    "optimality_gap",
    "pairwise_fisher",
    "performance_profiles",
    "probability_of_improvement",
    "wilson_interval",
]
