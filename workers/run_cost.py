"""What a run will cost the worker, estimated before it is queued (torch-free: the web layer reads it).

The run budgets (peftlab/classroom/quotas.py) bound this estimate rather than the steps alone: 2000 steps
of LoRA at batch 16 and 2000 steps of full fine-tuning at batch 256 are the same number of steps
and a hundredfold apart in worker time. Per method, measured on a CPU by bench/run_cost.py and
kept in workers/data/run_cost.json with that CPU named:

    seconds = fixed + steps * (per_step + per_example * batch) + evaluations * per_val_example * val_size

`fixed` is paid once (building the model, the final evaluation, the end-of-run measurements);
`evaluations` are the ones every `eval_every` steps. The figures are one CPU's: a budget in them
is "seconds of that CPU", which is what the messages say. A GPU worker is faster, never slower.
"""

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

COST_FILE = Path(__file__).resolve().parent / "data" / "run_cost.json"


@dataclass(frozen=True)
class Cost:
    fixed_seconds: float
    per_step_seconds: float
    per_example_seconds: float
    per_val_example_seconds: float

    def step_seconds(self, batch_size: int) -> float:
        return self.per_step_seconds + self.per_example_seconds * batch_size

    def evaluation_seconds(self, val_size: int) -> float:
        return self.per_val_example_seconds * val_size

    def seconds(self, steps: int, batch_size: int, eval_every: int, val_size: int) -> float:
        evaluations = steps // eval_every if eval_every else 0
        return (
            self.fixed_seconds + steps * self.step_seconds(batch_size) + evaluations * self.evaluation_seconds(val_size)
        )

    def steps_within(self, seconds: float, batch_size: int, eval_every: int, val_size: int) -> int:
        """The most steps at `batch_size` whose estimate stays within `seconds` (0: none)."""
        per_step = self.step_seconds(batch_size) + (self.evaluation_seconds(val_size) / eval_every if eval_every else 0)
        return max(0, math.floor((seconds - self.fixed_seconds) / per_step))

    def batch_within(self, seconds: float, steps: int, eval_every: int, val_size: int) -> int:
        """The largest batch for `steps` steps whose estimate stays within `seconds` (0: none)."""
        left = seconds - self.seconds(steps, 0, eval_every, val_size)
        if left < 0:
            return 0
        return math.floor(left / (steps * self.per_example_seconds)) if self.per_example_seconds > 0 else 10**9


@cache
def measured() -> dict:
    """The stored measurement: {"machine", "measured", "task", "methods": {name: Cost fields}}."""
    return json.loads(COST_FILE.read_text())


def machine() -> str:
    """The CPU the costs were measured on, as the messages name it."""
    return measured()["machine"].split(",")[0]


def cost_of(method: str) -> Cost:
    return Cost(**measured()["methods"][method])
