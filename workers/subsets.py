"""A seeded, class-balanced subset of a training split (the `train_examples` run parameter).

Standard library only. The subset takes the classes in turn, each time the next example of that
class in a seeded shuffle, so the classes differ by at most one example (unless a class runs
out), the same seed always gives the same subset, and a smaller subset is the start of a larger
one: a sweep over data sizes with one seed trains the small set inside the large one.
"""

import random
from collections.abc import Sequence


def balanced_subset(labels: Sequence[int], size: int, seed: int) -> list[int]:
    """Indices (ascending) of `size` examples drawn class by class in turn."""
    if not 1 <= size <= len(labels):
        raise ValueError(f"a subset of {size} from {len(labels)} examples")
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    queues = []
    for label in sorted(by_class):
        members = by_class[label]
        rng.shuffle(members)
        queues.append(members)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < size:
        for members in queues:
            if depth < len(members) and len(chosen) < size:
                chosen.append(members[depth])
        depth += 1
    return sorted(chosen)
