"""The Pareto front of finished runs: the runs no other run beats on both accuracy and cost.

A run dominates another when it costs no more (trainable parameters, peak memory or training
time: the smaller the better) and is no less accurate (the larger the better), and is strictly
better on at least one of the two. The front is every run that nothing dominates. Two runs with
exactly the same cost and accuracy do not dominate each other: both are on the front.

Pure Python, no Django: peftlab/api/compare.py serialises what this returns.
"""

import math
from collections.abc import Hashable
from typing import NamedTuple


class CostPoint(NamedTuple):
    id: Hashable
    x: float  # the cost: minimised
    y: float  # the accuracy: maximised


def pareto_front(points) -> list:
    """The ids of the non-dominated points, ordered by cost (then by id among equals).

    `points` is an iterable of (id, x, y). Raises ValueError on a cost or an accuracy that is not
    a finite number (a run without the measurement must be left out by the caller).
    """
    clean = []
    for point in points:
        point = CostPoint(*point)
        for name, value in (("cost", point.x), ("accuracy", point.y)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"point {point.id!r}: the {name} must be a finite number, not {value!r}")
        clean.append(point)
    # Cheapest first; at equal cost the most accurate first. Sweeping in that order, a point is on
    # the front when it is more accurate than everything cheaper or as cheap, or when it equals
    # the last front point exactly.
    clean.sort(key=lambda p: (p.x, -p.y, str(p.id)))
    front, best, last = [], -math.inf, None
    for point in clean:
        if point.y > best or (point.x, point.y) == last:
            front.append(point.id)
            best, last = point.y, (point.x, point.y)
    return front
