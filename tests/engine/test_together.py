"""Lanes trained together (workers/training.py `train_together`, the race's engine): round-robin
in one process, each lane with its own clock, memory figures, random state and outcome."""

import math
import time

import pytest
import torch

from workers import measure, training
from workers.methods import validate_run

pytestmark = pytest.mark.slow


def spec(method="lora", steps=4, **params):
    return validate_run(method, "sentiment", steps, 0, {"eval_every": 0, **params})


class Lanes:
    """Each lane's reported points and evaluations, the lanes' steps in the order they were
    taken (`training._step` watched) and the order the lanes ended in."""

    def __init__(self, monkeypatch, slow_steps=None, fail_at=None):
        self.points: dict[int, list] = {}
        self.evals: dict[int, list] = {}
        self.taken: list[tuple[int, int]] = []  # (lane, step)
        self.step_seconds: dict[int, list[float]] = {}
        self.ended: list[tuple[int, object]] = []
        runs: list[int] = []  # id() of each lane's run, in the order of their first steps
        real_step = training._step

        def step(run, ids, labels, number):
            if id(run) not in runs:
                runs.append(id(run))
            lane = runs.index(id(run))
            self.taken.append((lane, number))
            started = time.perf_counter()
            if fail_at is not None and (lane, number) == fail_at:
                raise training.TrainingError(f"the loss became nan at step {number}; try a smaller learning rate")
            if slow_steps and lane in slow_steps:
                time.sleep(slow_steps[lane])
            value = real_step(run, ids, labels, number)
            self.step_seconds.setdefault(lane, []).append(time.perf_counter() - started)
            return value

        monkeypatch.setattr(training, "_step", step)

    def lane(self, i, spec, go_on=lambda points: True, should_stop=training._never):
        self.points[i], self.evals[i] = [], []

        def report(points, evals):
            self.points[i].extend(points)
            self.evals[i].extend(evals)
            return go_on(self.points[i])

        return training.Lane(
            spec, report, should_stop=should_stop, ended=lambda outcome: self.ended.append((i, outcome))
        )


def steps(points):
    return [p.step for p in points]


def test_lanes_take_one_step_each_in_turn_and_train_the_curve_each_would_train_alone(monkeypatch):
    lanes = Lanes(monkeypatch)
    specs = [spec("lora", 4, dropout=0.1), spec("bitfit", 2), spec("lora", 3, rank=2, lr=1e-3)]
    outcomes = training.train_together([lanes.lane(i, s) for i, s in enumerate(specs)], torch.device("cpu"))

    # Round-robin: step 1 of every lane, then step 2 of every lane...; a lane that has taken
    # its last step leaves, the others go on.
    assert lanes.taken == [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2), (0, 3), (2, 3), (0, 4)]
    assert [i for i, _ in lanes.ended] == [1, 2, 0]  # each ended as it took its last step
    for i, s in enumerate(specs):
        assert steps(lanes.points[i]) == list(range(1, s.steps + 1))
        assert steps(lanes.evals[i]) == [s.steps]
        assert outcomes[i]["cancelled"] is False and outcomes[i] is dict(lanes.ended)[i]
        assert outcomes[i]["val_accuracy"] == lanes.evals[i][-1].val_accuracy
    # Each lane draws from its own random state (dropout's masks): lane 0 trains exactly the
    # losses train() gives its spec alone.
    monkeypatch.undo()
    alone = []
    training.train(specs[0], lambda points, evals: alone.extend(points) or True)
    assert [p.loss for p in lanes.points[0]] == [p.loss for p in alone]


def test_each_lanes_seconds_count_only_its_own_steps(monkeypatch):
    """Lane 0's steps take 1.5 s more each (as a slow method would): lane 1's points and
    seconds must not count them, though every step of lane 1 waited for one of lane 0."""
    lanes = Lanes(monkeypatch, slow_steps={0: 1.5})
    started = time.perf_counter()
    slow, fast = training.train_together([lanes.lane(0, spec("bitfit", 3)), lanes.lane(1, spec("lora", 3))])
    wall = time.perf_counter() - started
    for i, metrics in ((0, slow), (1, fast)):
        own = lanes.step_seconds[i]
        elapsed = [p.elapsed for p in lanes.points[i]]
        # Each point's elapsed: this lane's steps so far, and only the little else of its own
        # turns (the next batch, the report: a list append here).
        for k in range(3):
            assert sum(own[: k + 1]) <= elapsed[k] < sum(own[: k + 1]) + 0.25 * (k + 1), (i, k, elapsed, own)
        assert metrics["train_seconds"] >= round(sum(own), 3) - 0.001
        assert metrics["steps_per_second"] == pytest.approx(3 / metrics["train_seconds"], rel=0.01)
    assert lanes.points[0][0].elapsed > 1.5
    # The lanes' clocks share out the wall time: together no more than it.
    assert slow["train_seconds"] + fast["train_seconds"] <= wall
    assert fast["train_seconds"] < wall - 3 * 1.5


def test_a_lane_that_fails_or_is_cancelled_leaves_and_the_others_finish(monkeypatch):
    monkeypatch.setattr(training, "FLUSH_SECONDS", 0)  # every step reported
    lanes = Lanes(monkeypatch, fail_at=(1, 2))
    stop = {"lane 2": False}

    def stop_lane_2_after_step_2(points):
        stop["lane 2"] = steps(points)[-1] >= 2
        return True

    lane_2 = lanes.lane(2, spec("lora", 5), go_on=stop_lane_2_after_step_2, should_stop=lambda: stop["lane 2"])
    outcomes = training.train_together(
        [
            lanes.lane(0, spec("bitfit", 5), go_on=lambda points: steps(points)[-1] < 3),  # its report cancels
            lanes.lane(1, spec("lora", 5)),  # step 2 fails
            lane_2,  # its should_stop: stops inside step 3's forward pass
            lanes.lane(3, spec("lora", 5, rank=2)),  # trains to its end
        ]
    )
    cancelled, failed, stopped, finished = outcomes
    assert isinstance(failed, training.TrainingError) and "loss became nan at step 2" in str(failed)
    assert steps(lanes.points[1]) == [1]  # its step before the failure is reported all the same
    assert cancelled["cancelled"] is True and steps(lanes.points[0]) == [1, 2, 3]
    assert stopped["cancelled"] is True and steps(lanes.points[2]) == [1, 2]
    assert (0, 4) not in lanes.taken and (1, 3) not in lanes.taken and (2, 4) not in lanes.taken
    assert finished["cancelled"] is False and steps(lanes.points[3]) == [1, 2, 3, 4, 5]
    assert finished["val_accuracy"] is not None and finished["adapter_bytes"] is None  # no save_dir
    assert [i for i, _ in lanes.ended] == [1, 0, 2, 3]
    assert dict(lanes.ended) == dict(enumerate(outcomes))
    # Cancelled lanes are not evaluated again; their seconds are their own steps'.
    assert cancelled["val_accuracy"] is None and stopped["val_accuracy"] is None
    assert all(math.isfinite(m["train_seconds"]) for m in (cancelled, stopped, finished))


def test_a_lane_that_cannot_be_built_fails_alone(monkeypatch):
    real_prepare = training._prepare

    def prepare(spec, device, memory, base=None):
        if spec.method == "bitfit":
            raise RuntimeError("can't allocate memory")
        return real_prepare(spec, device, memory, base)

    monkeypatch.setattr(training, "_prepare", prepare)
    ended = []
    lanes = [
        training.Lane(spec("bitfit", 2), lambda p, e: True, ended=lambda outcome: ended.append("bitfit")),
        training.Lane(spec("lora", 2), lambda p, e: True, ended=lambda outcome: ended.append("lora")),
    ]
    broken, built = training.train_together(lanes)
    assert isinstance(broken, RuntimeError) and built["cancelled"] is False
    assert ended == ["bitfit", "lora"]


def test_on_cuda_each_lanes_peak_is_measured_around_its_own_turns(monkeypatch):
    """The allocator's figures stand in for a GPU's. The process holds 100 bytes; lane A's build
    adds 400, lane B's 300. A's turn rises 200 above where it began and keeps 50 (its gradients
    and optimizer state); B's turn then rises 400 and keeps nothing. Each lane's peak is what it
    held plus its own rise, whatever the other lane holds."""
    fig = {"now": 100, "top": 100}
    monkeypatch.setattr(measure, "_allocate_cublas_workspaces", lambda device: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: fig["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: fig["top"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: fig.update(top=fig["now"]))
    cuda = torch.device("cuda")

    def allocate(n):
        fig["now"] += n
        fig["top"] = max(fig["top"], fig["now"])

    a = measure.LaneMemory(cuda)
    allocate(400)
    a.built()
    b = measure.LaneMemory(cuda)
    allocate(300)
    b.built()
    with a.turn():
        allocate(200)
        allocate(-150)
    with b.turn():
        allocate(400)
        allocate(-400)
    assert a.result({}, 0)["peak_memory_bytes"] == 600
    assert b.result({}, 0)["peak_memory_bytes"] == 700
    with a.turn():  # A's next turn starts from the 450 it holds
        allocate(100)
        allocate(-100)
    assert a.result({}, 0)["peak_memory_bytes"] == 600
    assert "this lane's own turns" in a.result({}, 0)["peak_memory_source"]


def test_on_the_cpu_a_lanes_peak_is_counted_from_its_own_tensors(monkeypatch):
    outcomes = training.train_together(
        [
            training.Lane(spec("lora", 2, batch_size=4), lambda p, e: True),
            training.Lane(spec("full", 2), lambda p, e: True),
        ]
    )
    for metrics in outcomes:
        assert metrics["peak_memory_bytes"] == sum(metrics["memory_breakdown"].values())
        assert "rss_growth_bytes" in metrics
    # Full fine-tuning's gradients and AdamW state are the whole model's; LoRA's a sliver.
    assert outcomes[1]["memory_breakdown"]["grads"] > 50 * outcomes[0]["memory_breakdown"]["grads"]
