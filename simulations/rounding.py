"""Numbers for the playgrounds' JSON answers, rounded to significant digits: their values span
many decades (an error of 1e-9 past a matrix's rank, parameter counts of 1e11), so a fixed number
of decimals would either lose the small ones or bloat the large ones."""

import numpy as np


def significant(values, digits: int = 4):
    """`values` (a number, or lists or arrays of them, nested) rounded to `digits` significant
    digits, in the same shape, as Python floats. One flat pass: P16 sends 42,000 numbers, and a
    call per element or row took most of its request."""
    a = np.asarray(values, dtype=float)
    spec = f".{digits}g"
    return np.array([float(format(x, spec)) for x in a.ravel().tolist()]).reshape(a.shape).tolist()
