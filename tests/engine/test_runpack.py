"""A pack (workers/runpack.py): runs trained in one fused step over one frozen base give, step by
step, the losses and evaluations they give alone, whatever joins or leaves around them."""

import math

import pytest

from workers import runpack, training
from workers.methods import validate_run

pytestmark = pytest.mark.slow

# fp32: the fused step computes what each run computes alone up to float rounding: its
# attention is one batched product for runs of equal width (the same arithmetic as
# scaled_dot_product_attention, in another order), and the frozen layers' products are wider
# matrices, which the CPU's kernels block and split between threads differently: measured at most
# 2e-7 over these steps on an Intel Xeon (2 threads), 1.1e-6 on an AMD EPYC in the suite's
# processes (the halves of the out-of-memory test). Under bf16 autocast the frozen layers'
# products are rounded to bf16, and a wider matrix may round a product one bf16 step apart:
# measured at most 6e-4 over six steps.
FP32_TOLERANCE = 5e-6
BF16_TOLERANCE = 3e-3


def lora(task="sentiment", steps=6, seed=0, **params):
    return validate_run("lora", task, steps, seed, {"eval_every": 3, **params})


# Ranks, targets, tasks, seeds, learning rates and LoRA dropout, mixed.
MIXED = [
    lora(),
    lora(seed=1, rank=4, target_modules=["query", "key", "value", "attention_output", "ffn"], lr=3e-3, dropout=0.1),
    lora(task="topic", steps=4, seed=2, rank=16, alpha=8.0, target_modules=["value", "ffn"]),
    lora(seed=3, rank=2, target_modules=["attention_output"], lr=1e-2, batch_size=8),
]


class Recorder:
    """What each run reports (losses and evaluations by step) and how it ended."""

    def __init__(self):
        self.losses: dict[int, dict[int, float]] = {}
        self.evals: dict[int, dict[int, tuple[float, float]]] = {}
        self.outcomes: dict[int, object] = {}

    def lane(self, i, spec, go_on=lambda step: True):
        self.losses[i], self.evals[i] = {}, {}

        def report(points, evals):
            self.losses[i].update({p.step: p.loss for p in points})
            self.evals[i].update({e.step: (e.val_loss, e.val_accuracy) for e in evals})
            return go_on(max(self.losses[i]))

        return training.Lane(spec, report, ended=lambda outcome: self.outcomes.__setitem__(i, outcome))


def alone(spec, go_on=lambda step: True):
    recorder = Recorder()
    lane = recorder.lane(0, spec, go_on)
    training.train(spec, lane.report)
    return recorder.losses[0], recorder.evals[0]


def assert_same(packed: dict, single: dict, tolerance: float):
    assert packed.keys() == single.keys()
    worst = max(abs(packed[k] - single[k]) for k in single)
    assert worst <= tolerance, f"largest difference {worst:.3g} over {len(single)} steps"


def train_with_joins(specs, joins_at: dict[int, int], go_on=None):
    """Train `specs` in one pack; run i joins before the pack's step joins_at.get(i, 1)."""
    recorder = Recorder()
    lanes = {i: recorder.lane(i, s, (go_on or {}).get(i, lambda step: True)) for i, s in enumerate(specs)}
    pack = runpack.Pack()
    step = 0
    while True:
        step += 1
        for i, lane in lanes.items():
            if joins_at.get(i, 1) == step:
                pack.join(lane)
        if not pack.members and all(joins_at.get(i, 1) <= step for i in lanes):
            break
        pack.step()
    return recorder


def test_a_packed_run_trains_the_steps_it_trains_alone_fp32(monkeypatch):
    """Mixed ranks, targets, tasks, seeds and learning rates; one run joins at the pack's third
    step and one is cancelled after its third, while the others go on."""
    monkeypatch.setenv("PEFTLAB_AUTOCAST", "off")
    cancel_after = 3
    packed = train_with_joins(MIXED, joins_at={3: 3}, go_on={1: lambda step: step < cancel_after})
    for i, spec in enumerate(MIXED):
        losses, evals = alone(spec, go_on=(lambda step: step < cancel_after) if i == 1 else (lambda step: True))
        assert_same(packed.losses[i], losses, FP32_TOLERANCE)
        assert packed.evals[i].keys() == evals.keys()
        for step, (val_loss, accuracy) in evals.items():
            assert math.isclose(packed.evals[i][step][0], val_loss, abs_tol=FP32_TOLERANCE)
            assert packed.evals[i][step][1] == accuracy
    finished = packed.outcomes[0]
    assert finished["cancelled"] is False and finished["pack"]["largest"] == 4
    assert packed.outcomes[1]["cancelled"] is True
    assert len(packed.losses[1]) == cancel_after
    assert packed.outcomes[2]["pack"]["largest"] >= 3  # it left at step 4 (its last) while others went on
    assert packed.outcomes[3]["adapter_bytes"] is None  # no save_dir given; finished all the same
    assert max(packed.losses[3]) == MIXED[3].steps


def test_a_packed_run_stays_within_bf16_rounding_of_alone(monkeypatch):
    monkeypatch.setenv("PEFTLAB_AUTOCAST", "bf16")
    specs = [lora(steps=4), lora(steps=4, seed=5, rank=4, target_modules=["query", "ffn"], lr=3e-3)]
    packed = train_with_joins(specs, joins_at={})
    for i, spec in enumerate(specs):
        assert_same(packed.losses[i], alone(spec)[0], BF16_TOLERANCE)


def test_a_step_out_of_memory_is_taken_again_in_halves(monkeypatch):
    """A fused step of more than two runs runs out of memory: the pack takes it in halves, each
    run's random state put back, and every run still trains its own steps."""
    monkeypatch.setenv("PEFTLAB_AUTOCAST", "off")
    real = runpack.Pack._fused
    sizes = []

    def fused(self, segments):
        sizes.append(len(segments))
        if len(segments) > 2:
            self._forward(segments)  # draws random numbers and builds a graph, as a real failure may
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB")
        return real(self, segments)

    monkeypatch.setattr(runpack.Pack, "_fused", fused)
    specs = [lora(steps=3, seed=s) for s in range(4)]
    packed = train_with_joins(specs, joins_at={})
    assert sizes[:3] == [4, 2, 2]
    for i, spec in enumerate(specs):
        assert_same(packed.losses[i], alone(spec)[0], FP32_TOLERANCE)


def test_a_run_that_fails_leaves_and_the_others_go_on(monkeypatch):
    """A run whose report raises (its database write failed, say) ends with that error; a
    method that does not join packs is refused when it joins; the rest train to their end."""
    monkeypatch.setenv("PEFTLAB_AUTOCAST", "off")
    recorder = Recorder()
    good = recorder.lane(0, lora(steps=4))
    broken = recorder.lane(1, lora(steps=4, seed=1))
    real_report = broken.report

    def report(points, evals):
        real_report(points, evals)
        if max(recorder.losses[1]) >= 2:
            raise ConnectionError("the database went away")
        return True

    broken.report = report
    full = recorder.lane(2, validate_run("full", "sentiment", 4, 0, {}))
    runpack.train_packed([good, broken, full])
    assert isinstance(recorder.outcomes[1], ConnectionError)
    assert isinstance(recorder.outcomes[2], training.TrainingError)
    assert "does not join a pack" in str(recorder.outcomes[2])
    assert recorder.outcomes[0]["cancelled"] is False
    assert sorted(recorder.losses[0]) == [1, 2, 3, 4]
    # Its points reach the report in batches (every 0.2 s): it failed at the report after step 2
    # at the latest, the report that comes before its last step.
    assert sorted(recorder.losses[1])[:2] == [1, 2] and max(recorder.losses[1]) <= 3


def test_which_methods_join_a_pack_and_why():
    from simulations.methods import METHODS

    assert runpack.JOINS_PACK == {"lora"}
    for method in METHODS.values():
        assert len(method.pack_note) > 40, method.name
        assert method.describe()["joins_pack"] is (method.name in runpack.JOINS_PACK)


def test_the_reproduce_script_reproduces_a_run_trained_in_a_pack(tmp_path, monkeypatch):
    from tests.support.reproduce import printed_losses, run_script
    from workers import notebook

    monkeypatch.setenv("PEFTLAB_AUTOCAST", "off")
    spec = lora(steps=2, rank=4)
    packed = train_with_joins([spec, lora(steps=3, seed=7, rank=8, target_modules=["ffn"])], joins_at={})
    assert packed.outcomes[0]["pack"]["largest"] == 2
    done = run_script(notebook.script(spec, run_id=1, metrics=packed.outcomes[0]), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert printed_losses(done.stdout) == pytest.approx([packed.losses[0][s] for s in (1, 2)], abs=1e-4)


def test_a_run_cancelled_before_its_first_step_leaves_with_its_metrics(monkeypatch):
    monkeypatch.setenv("PEFTLAB_AUTOCAST", "off")
    recorder = Recorder()
    going = recorder.lane(0, lora(steps=2))
    stopped = recorder.lane(1, lora(steps=2, seed=1))
    stopped.should_stop = lambda: True
    runpack.train_packed([going, stopped])
    metrics = recorder.outcomes[1]
    assert metrics["cancelled"] is True and recorder.losses[1] == {}
    assert metrics["train_seconds"] > 0 and metrics["steps_per_second"] == 0
    assert recorder.outcomes[0]["cancelled"] is False
