"""The room in a worker's pack (workers/runpack.py): which waiting run may join it now.

A pack trains its runs in one fused step, so a step's work and memory grow with every run it
holds. A run joins only while the pack stays within three bounds (settings, per worker):

- tokens per step, PEFTLAB_PACK_TOKENS: each run counts at its batch of its task's longest
  training example (the widest batch it can draw), so that no step exceeds the bound;
- memory, PEFTLAB_PACK_MEMORY_MB (or what the device has free, if less): each run's own tensors (trained parameters, their gradients and
  AdamW's state) and its step's activations, as the memory calculator predicts them for that
  exact configuration (simulations/memory.py); the frozen base is held once for the pack;
- runs, PEFTLAB_PACK_RUNS.

And in time: a pack takes runs only during the first PEFTLAB_RUN_TIME_LIMIT of its life, and only
a run whose estimated time (peftlab/runs/estimate.py) times the pack's size fits in what is left
of it. Each run stops at its own limit (tasks.py), so every run has ended within twice the limit,
before the task's own limits (lifecycle.pack_time_limits), which would end every run at once.
"""

import time
from dataclasses import dataclass, field

from django.conf import settings

from peftlab.runs import estimate, races
from peftlab.runs.models import Run
from simulations import memory
from workers import base_model
from workers.methods import ANY_TASK, RunRequestError, validate_run


@dataclass(frozen=True)
class Size:
    tokens: int
    bytes: int
    seconds: float


def size_of(run: Run, precision: str) -> Size:
    """What the run adds to a pack's step: tokens, predicted bytes (its own tensors and its
    activations), and its estimated seconds alone."""
    spec = validate_run(run.method, run.task, run.steps, run.seed, run.params, may_use_task=ANY_TASK)
    seq, labels = races.task_shape(run.task)
    p = memory.lab_run_prediction(
        base_model.memory_model(), run.method, spec.params, labels, seq=seq, precision=precision
    )
    own = p["trainable"] * 4 + p["grads"] + p["optimizer_state"] + p["activations"]
    return Size(spec.params["batch_size"] * seq, own, estimate.estimated_seconds(spec))


@dataclass
class Room:
    """What a pack holds now, against the bounds; `take` admits a run, `give_back` frees it."""

    precision: str = "fp32"
    # Bytes the runs' own tensors may take: PEFTLAB_PACK_MEMORY_MB, or less where the device has
    # less free (tasks.py asks the engine, workers/runpack.py `device_memory`).
    memory: int | None = None
    started: float = field(default_factory=time.monotonic)
    held: dict[int, Size] = field(default_factory=dict)

    def window(self) -> float:
        """Seconds left in which the pack may take runs (see the module docstring)."""
        limit = settings.PEFTLAB_RUN_TIME_LIMIT
        return float("inf") if not limit else limit - (time.monotonic() - self.started)

    def fits(self, run_id: int) -> bool:
        """Whether the run fits in the pack now; `add` it once it is claimed. An empty pack takes
        any run (a run that cannot be checked fails when it is built)."""
        run = Run.objects.filter(pk=run_id).first()
        if run is None:
            return False
        try:
            size = size_of(run, self.precision)
        except RunRequestError:
            size = Size(0, 0, 0.0)
        self._checked = (run_id, size)
        if not self.held:
            return True
        tokens = sum(s.tokens for s in self.held.values()) + size.tokens
        used = sum(s.bytes for s in self.held.values()) + size.bytes
        return (
            len(self.held) < settings.PEFTLAB_PACK_RUNS
            and tokens <= settings.PEFTLAB_PACK_TOKENS
            and used <= min(settings.PEFTLAB_PACK_MEMORY_MB * 2**20, self.memory or float("inf"))
            and size.seconds * (len(self.held) + 1) <= self.window()
        )

    def add(self, run_id: int) -> None:
        """The run checked last by `fits` (or any other, counted as checked now) joined."""
        checked_id, size = getattr(self, "_checked", (None, None))
        if checked_id != run_id:
            self.fits(run_id)
            size = self._checked[1]
        self.held[run_id] = size

    def give_back(self, run_id: int) -> None:
        self.held.pop(run_id, None)
