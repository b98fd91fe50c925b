"""The simulated race: the curve fit recovers known curves, refuses to extrapolate, and the shipped
fits come from real runs of the lab's current engine (their measured counts match the formulas)."""

import numpy as np
import pytest

from peftlab.playgrounds.race_sim import DEFAULT_LANES
from simulations import params, race_sim
from workers import base_model, datasets
from workers.methods import METHODS, validate_run


def test_the_fit_recovers_a_known_exponential_through_noise():
    t = np.arange(1, 201)
    rng = np.random.default_rng(0)
    y = 0.3 + 0.4 * np.exp(-t / 35.0) + rng.normal(0, 0.02, t.size)
    curve = race_sim.fit_curve(t, y)
    assert curve.c == pytest.approx(0.3, abs=0.01)
    assert curve.a == pytest.approx(0.4, abs=0.03)
    assert curve.tau == pytest.approx(35.0, rel=0.15)
    assert curve.rmse == pytest.approx(0.02, abs=0.005)
    assert curve.max_step == 200


def test_a_rising_accuracy_fits_with_a_negative_amplitude():
    t = [10, 20, 30, 40, 50, 60]
    y = [0.9 - 0.4 * np.exp(-s / 15) for s in t]
    curve = race_sim.fit_curve(t, y)
    assert curve.a < 0 and curve.c == pytest.approx(0.9, abs=0.01)
    assert curve.at([60])[0] == pytest.approx(y[-1], abs=1e-3)


@pytest.mark.parametrize(
    "steps, values", [([1, 2], [0.5, 0.4]), ([1, 2, 3], [0.5, 0.4]), ([1, 2, 3], [1, float("nan"), 2])]
)
def test_the_fit_refuses_what_it_cannot_fit(steps, values):
    with pytest.raises(ValueError):
        race_sim.fit_curve(steps, values)


def fitted_lane(max_step=100):
    t = np.arange(1, max_step + 1)
    points = [{"step": int(s), "loss": float(0.2 + 0.5 * np.exp(-s / 20)), "elapsed": 0.1 * float(s)} for s in t]
    evals = [{"step": int(s), "val_accuracy": float(0.9 - 0.4 * np.exp(-s / 20))} for s in t[9::10]]
    return race_sim.fit_lane("lora", points, evals, {"trainable_params": 1})


def test_a_simulated_lane_stays_inside_the_measured_steps():
    lane = fitted_lane()
    out = race_sim.simulate(lane, 60, every=7)
    assert out["steps"][0] == 1 and out["steps"][-1] == 60
    assert len(out["loss"]) == len(out["val_accuracy"]) == len(out["steps"])
    assert out["seconds"] == pytest.approx(6.0)
    # Accuracy only from the first evaluation (step 10) on, each a fraction; nothing before it.
    shown = dict(zip(out["steps"], out["val_accuracy"], strict=True))
    assert all((a is None) == (step < 10) for step, a in shown.items())
    assert all(0 <= a <= 1 for a in shown.values() if a is not None)
    with pytest.raises(ValueError, match="covers 1 to 100 steps"):
        race_sim.simulate(lane, 101)


def test_the_shipped_fits_cover_the_default_race_and_come_from_real_runs():
    shipped = race_sim.shipped()
    assert set(shipped["tasks"]) == set(datasets.task_names())
    dims = base_model.dimensions()
    for task, lanes in shipped["tasks"].items():
        assert set(DEFAULT_LANES) <= set(lanes) <= set(METHODS), task
        labels = len(datasets.load_task(task).labels)
        for method, lane in lanes.items():
            spec = validate_run(method, task, 1, 0, {})
            # The measured count of the run the fit came from is the formula's for the default
            # configuration of today's engine: the shipped data is not stale or invented.
            assert lane.metrics["trainable_params"] == params.trainable_params(method, spec.params, dims, labels)
            assert lane.loss.max_step == shipped["about"]["steps"]
            # The accuracy curve starts at the run's first evaluation: nothing is drawn before it.
            assert lane.accuracy.min_step == shipped["about"]["eval_every"]
            first = race_sim.simulate(lane, lane.loss.max_step)
            before = [a for step, a in zip(first["steps"], first["val_accuracy"]) if step < lane.accuracy.min_step]
            after = [a for step, a in zip(first["steps"], first["val_accuracy"]) if step >= lane.accuracy.min_step]
            assert before and all(a is None for a in before) and all(0 <= a <= 1 for a in after)
            # The loss falls over the measured steps and the fit follows the measured run.
            assert lane.loss.at([1])[0] > lane.loss.at([lane.loss.max_step])[0], (task, method)
            assert lane.accuracy.at([lane.loss.max_step])[0] == pytest.approx(lane.metrics["val_accuracy"], abs=0.08)


@pytest.mark.django_db
def test_the_simulated_race_api_answers_labelled_curves_and_rejects_bad_input(client):
    fitted = race_sim.shipped()["about"]["steps"]
    body = client.get("/api/playgrounds/four-method-race/simulated?task=sentiment&steps=40").json()
    assert body["simulated"] is True and body["fitted_on"]["steps"] == fitted
    assert [lane["method"] for lane in body["lanes"]] == ["full", "adapter", "lora", "prompt"]
    assert all(lane["steps"][-1] == 40 for lane in body["lanes"])
    # Time is shown against LoRA's lane, measured in the same fit.
    assert body["time_reference"] == "lora"
    lora = next(lane for lane in body["lanes"] if lane["method"] == "lora")
    for lane in body["lanes"]:
        assert lane["relative_seconds"] == pytest.approx(lane["seconds"] / lora["seconds"], abs=0.006)
    swapped = client.get("/api/playgrounds/four-method-race/simulated?methods=prompt,lora").json()
    assert [lane["method"] for lane in swapped["lanes"]] == ["prompt", "lora"]
    no_lora = client.get("/api/playgrounds/four-method-race/simulated?methods=prompt,full").json()
    assert no_lora["time_reference"] == "prompt" and no_lora["lanes"][0]["relative_seconds"] == 1.0
    for query, message in [
        ("task=nope", "unknown task"),
        (f"steps={fitted + 1}", "only covers"),
        ("steps=0", "steps must be"),
        ("methods=lora,nope", "methods must be"),
        ("methods=" + ",".join(["lora"] * 7), "methods must be"),
    ]:
        response = client.get(f"/api/playgrounds/four-method-race/simulated?{query}")
        assert response.status_code == 400, query
        assert message in response.json()["error"], query


@pytest.mark.django_db
def test_a_method_without_a_fitted_run_is_refused_not_invented(client, monkeypatch):
    only_lora = {"about": {"steps": 100}, "tasks": {"sentiment": {"lora": fitted_lane()}}}
    monkeypatch.setattr(race_sim, "shipped", lambda: only_lora)
    response = client.get("/api/playgrounds/four-method-race/simulated?methods=lora,full")
    assert response.status_code == 400
    assert "no real run of full on sentiment has been fitted" in response.json()["error"]
    assert client.get("/api/playgrounds/four-method-race/simulated?methods=lora").json()["methods"] == ["lora"]
