"""P17's instant mode: a simulated race from curves fitted to real runs (simulations/race_sim.py)."""

from ninja import Router

from peftlab.api.errors import Error, checked_query
from peftlab.errors import Invalid
from simulations import race_sim
from workers import datasets
from workers.methods import METHODS

router = Router(tags=["playgrounds"])

DEFAULT_LANES = ("full", "adapter", "lora", "prompt")
MAX_LANES = 6
MAX_POINTS = 200  # per lane: the chart needs no more
_FITTED = race_sim.shipped()
# `methods` as simulated_race reads it: 1 to MAX_LANES method names separated by commas (empty
# items skipped); each must also have been fitted on the task, which the schema cannot say.
_METHOD = "(" + "|".join(METHODS) + ")"
METHODS_PATTERN = rf"^,*{_METHOD}(,+{_METHOD}){{0,{MAX_LANES - 1}}},*$"


@router.get(
    "/four-method-race/simulated",
    response={200: dict, 400: Error},
    summary="P17: a simulated race, from curves fitted to real runs of the lab (labelled simulated)",
)
def simulated_race(
    request,
    task: str = checked_query("sentiment", enum=list(_FITTED["tasks"])),
    steps: int = checked_query(
        None, description="default: every step the fits cover", minimum=1, maximum=_FITTED["about"]["steps"]
    ),
    methods: str = checked_query(",".join(DEFAULT_LANES), pattern=METHODS_PATTERN),
):
    shipped = race_sim.shipped()
    if task not in shipped["tasks"]:
        if datasets.is_sourced(task):  # by its shape alone: whether it exists is not said
            raise Invalid(
                f"an uploaded task ({task}) has no fitted runs to simulate; the instant "
                f"race covers {', '.join(shipped['tasks'])}. Start a real race instead."
            )
        raise Invalid(f"unknown task {task!r}; choose from {datasets.task_names()}")
    lanes = [m for m in methods.split(",") if m]
    unknown = [m for m in lanes if m not in METHODS]
    if unknown or not 1 <= len(lanes) <= MAX_LANES:
        raise Invalid(f"methods must be 1 to {MAX_LANES} of {sorted(METHODS)} (got {methods!r})")
    fitted = shipped["tasks"][task]
    missing = [m for m in lanes if m not in fitted]
    if missing:
        raise Invalid(
            f"no real run of {', '.join(missing)} on {task} has been fitted yet, so it cannot "
            f"be simulated; simulated methods: {', '.join(fitted)}. Start a real race instead."
        )
    fitted_steps = shipped["about"]["steps"]
    steps = fitted_steps if steps is None else steps
    if not 1 <= steps <= fitted_steps:
        raise Invalid(
            f"steps must be 1 to {fitted_steps}: the simulation only covers the steps "
            f"its real runs trained (got {steps})"
        )
    every = max(1, steps // MAX_POINTS)
    simulated = [race_sim.simulate(fitted[m], steps, every) for m in lanes]
    reference, relative = race_sim.relative_times(simulated)
    for lane, ratio in zip(simulated, relative, strict=True):
        lane["relative_seconds"] = ratio
    return {
        "simulated": True,
        "task": task,
        "steps": steps,
        "fitted_on": shipped["about"],
        "methods": list(fitted),
        "time_reference": reference,
        "lanes": simulated,
    }
