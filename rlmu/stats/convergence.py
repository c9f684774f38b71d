"""Convergence rates (METHODS section 4): Wilson intervals, Fisher's exact test, Newcombe differences.

A run converges when its final evaluation return is strictly above the task's threshold
(``rlmu.tasks.TaskSpec.converge_threshold``: "non-zero final return" on push and drawer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.stats

__all__ = [
    "convergence_table",
    "converged",
    "fisher_exact",
    "newcombe_difference",
    "pairwise_fisher",
    "wilson_interval",
]


def _check_counts(k, n, name: str = "") -> tuple[int, int]:
    if int(k) != k or int(n) != n or not 0 <= k <= n:
        raise ValueError(f"{name or 'counts'}: need integers 0 <= k <= n, got k={k}, n={n}")
    return int(k), int(n)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Rate ``k/n`` with its Wilson score interval: ``(point, low, high)``.

    With ``n == 0`` there is no information: the point is NaN and the interval is all of ``[0, 1]``.
    """
    k, n = _check_counts(k, n, "wilson_interval")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return (float("nan"), 0.0, 1.0)
    z = scipy.stats.norm.ppf(0.5 + confidence / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Clip rounding noise: the exact interval is [0, .] at k = 0 and [., 1] at k = n.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return (p, float(low), float(high))


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95):
    """Difference of rates ``k1/n1 - k2/n2`` with Newcombe's hybrid score interval (method 10, 1998),
    built from the two Wilson intervals: ``(point, low, high)``. NaN point and ``[-1, 1]`` if a group is empty.
    """
    p1, l1, u1 = wilson_interval(k1, n1, confidence)
    p2, l2, u2 = wilson_interval(k2, n2, confidence)
    if n1 == 0 or n2 == 0:
        return (float("nan"), -1.0, 1.0)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (float(d), float(max(-1.0, low)), float(min(1.0, high)))


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test of equal rates ``k1/n1`` vs ``k2/n2`` (scipy).

    An empty group carries no evidence: p = 1.
    """
    k1, n1 = _check_counts(k1, n1, "fisher_exact (group 1)")
    k2, n2 = _check_counts(k2, n2, "fisher_exact (group 2)")
    if n1 == 0 or n2 == 0:
        return 1.0
    return float(scipy.stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided").pvalue)


def converged(final_returns, threshold: float) -> np.ndarray:
    """Boolean array: final return strictly above ``threshold``. NaN returns are rejected."""
    r = np.asarray(final_returns, dtype=float).ravel()
    if np.isnan(r).any():
        raise ValueError(
            "final returns contain NaN (failed or unfinished runs must be removed or decided first)"
        )
    return r > threshold


def convergence_table(
    final_returns: Mapping[str, np.ndarray],
    threshold: float | Mapping[str, float],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Convergence rate per method with Wilson intervals.

    ``final_returns``: method -> final evaluation returns of its runs (raw returns, not normalised).
    ``threshold``: one value, or method -> value. Columns: method, converged, n, rate, low, high.
    """
    rows = []
    for method, r in final_returns.items():
        thr = threshold[method] if isinstance(threshold, Mapping) else threshold
        try:
            flags = converged(r, thr)
        except ValueError as e:
            raise ValueError(f"convergence_table: method {method!r}: {e}") from None
        k, n = int(flags.sum()), int(flags.size)
        rate, low, high = wilson_interval(k, n, confidence)
        rows.append({"method": method, "converged": k, "n": n, "rate": rate, "low": low, "high": high})
    return pd.DataFrame(rows, columns=["method", "converged", "n", "rate", "low", "high"])


def pairwise_fisher(
    table: pd.DataFrame,
    pairs: Sequence[tuple[str, str]] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Fisher's exact test and the Newcombe interval of the rate difference for pairs of methods.

    ``table``: the output of ``convergence_table`` (columns method, converged, n). ``pairs``: ``(a, b)``
    pairs; default every unordered pair in table order. Columns: a, b, rate_a, rate_b, diff, diff_low,
    diff_high, p_value (two-sided).
    """
    for col in ("method", "converged", "n"):
        if col not in table.columns:
            raise ValueError(f"pairwise_fisher: table lacks column {col!r}")
    by = {row.method: (int(row.converged), int(row.n)) for row in table.itertuples()}
    names = list(by)
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    rows = []
    for a, b in pairs:
        for m in (a, b):
            if m not in by:
                raise KeyError(f"pairwise_fisher: method {m!r} not in table (have {names})")
        (ka, na), (kb, nb) = by[a], by[b]
        d, lo, hi = newcombe_difference(ka, na, kb, nb, confidence)
        rows.append(
            {
                "a": a,
                "b": b,
                "rate_a": ka / na if na else float("nan"),
                "rate_b": kb / nb if nb else float("nan"),
                "diff": d,
                "diff_low": lo,
                "diff_high": hi,
                "p_value": fisher_exact(ka, na, kb, nb),
            }
        )
    return pd.DataFrame(
        rows, columns=["a", "b", "rate_a", "rate_b", "diff", "diff_low", "diff_high", "p_value"]
    )
