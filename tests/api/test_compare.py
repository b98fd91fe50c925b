"""Comparing runs: the Pareto front (pure), the generated code that reproduces a run (every
method), and the API behind the compare page, the Pareto view and the run page's code section.
Nothing here needs a worker: runs are written to the database as a worker would write them."""

import ast
import json
import math

import pytest
from django.test import Client

from peftlab.api.compare import COSTS, MAX_COMPARED
from peftlab.runs.models import EvalPoint, Point, Run
from simulations.pareto import pareto_front
from workers import datasets, methods, notebook


# --- the Pareto front ---------------------------------------------------------------------------
def test_the_front_keeps_the_runs_nothing_beats_on_both_cost_and_accuracy():
    points = [("a", 10, 0.70), ("b", 100, 0.80), ("c", 50, 0.60), ("d", 1000, 0.79), ("e", 5, 0.50)]
    # c costs more than a and is less accurate; d costs more than b and is less accurate.
    assert pareto_front(points) == ["e", "a", "b"]


def test_the_front_is_empty_for_no_points_and_the_point_itself_for_one():
    assert pareto_front([]) == []
    assert pareto_front([(7, 3.0, 0.5)]) == [7]


def test_at_equal_cost_only_the_most_accurate_is_on_the_front():
    assert pareto_front([(1, 10, 0.6), (2, 10, 0.7), (3, 20, 0.9)]) == [2, 3]


def test_at_equal_accuracy_only_the_cheapest_is_on_the_front():
    assert pareto_front([(1, 10, 0.7), (2, 5, 0.7), (3, 20, 0.7)]) == [2]


def test_exact_duplicates_are_both_on_the_front_in_id_order():
    assert pareto_front([(9, 10, 0.7), (4, 10, 0.7), (5, 20, 0.6)]) == [4, 9]


def test_a_dominated_duplicate_stays_off_the_front():
    assert pareto_front([(1, 10, 0.7), (2, 10, 0.7), (3, 5, 0.8)]) == [3]


def test_the_front_is_ordered_by_cost_whatever_the_input_order():
    points = [(i, float(i), math.log(i)) for i in range(1, 30)]
    assert pareto_front(reversed(points)) == list(range(1, 30))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "3", True])
def test_a_cost_or_accuracy_that_is_not_a_finite_number_is_refused(bad):
    with pytest.raises(ValueError, match="finite number"):
        pareto_front([(1, bad, 0.5)])
    with pytest.raises(ValueError, match="finite number"):
        pareto_front([(1, 3, bad)])


# --- the generated code ---------------------------------------------------------------------------
def spec_for(method, task="sentiment", steps=2, **params):
    return methods.validate_run(method, task, steps, 0, params)


@pytest.mark.parametrize("method", sorted(methods.METHODS))
@pytest.mark.parametrize("task", datasets.task_names())
def test_the_script_for_every_method_and_task_compiles_and_carries_the_runs_settings(method, task):
    spec = spec_for(method, task)
    text = notebook.script(
        spec,
        run_id=12,
        metrics={"val_accuracy": 0.75, "val_loss": 0.5, "trainable_params": 1234, "train_seconds": 3.5},
        device="cpu",
    )
    tree = ast.parse(text)  # a SyntaxError fails the test
    assigned = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert ast.literal_eval(assigned["METHOD"]) == method
    assert ast.literal_eval(assigned["TASK"]) == task
    assert ast.literal_eval(assigned["STEPS"]) == 2
    assert ast.literal_eval(assigned["LR"]) == spec.params["lr"]
    assert ast.literal_eval(assigned["BATCH_SIZE"]) == spec.params["batch_size"]
    for name, value in spec.params.items():
        if name.upper() in assigned:
            assert ast.literal_eval(assigned[name.upper()]) == value
    assert "What the lab measured for run 12 on cpu: validation accuracy 75.0 %" in text
    assert ast.literal_eval(assigned["AUTOCAST"]) is False  # the run's metrics name no bf16 autocast
    assert 'print(f"validation accuracy:' in text
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"workers", "simulations", "peftlab"}, "a standalone script imports nothing of the lab"


@pytest.mark.parametrize(
    "method, expected",
    [
        ("lora", ["LoraConfig(", "use_dora=False", "get_peft_model"]),
        ("dora", ["LoraConfig(", "use_dora=True"]),
        (
            "qlora",
            [
                "BitsAndBytesConfig(",
                'bnb_4bit_quant_type="nf4"',
                "bnb_4bit_use_double_quant=True",
                'llm_int8_skip_modules=["classifier"]',
                "LoraConfig(",
            ],
        ),
        ("prompt", ["PromptTuningConfig(", "PromptTuningInit.SAMPLE_VOCAB", "num_virtual_tokens=VIRTUAL_TOKENS"]),
        ("ia3", ["IA3Config(", 'feedforward_modules=r"']),
        (
            "adapter",
            [
                "class BottleneckAdapter(nn.Module)",
                "model = attach_adapters(model, BOTTLENECK, SEED)",
                "peft has no Houlsby",
            ],
        ),
        (
            "prefix",
            ["class PrefixSelfAttention(BertSelfAttention)", "model = attach_prefixes(model, VIRTUAL_TOKENS, SEED)"],
        ),
        ("bitfit", ["def apply_bitfit(model", "model = apply_bitfit(model)", "peft has no BitFit"]),
        ("full", ["model.requires_grad_(True)"]),
    ],
)
def test_each_method_is_built_as_the_lab_builds_it(method, expected):
    text = notebook.script(spec_for(method))
    for fragment in expected:
        assert fragment in text, fragment
    assert ("bitsandbytes" in text.split("Needs:")[1].splitlines()[0]) == (method == "qlora")


def test_the_target_modules_regex_is_the_labs_own():
    from workers import base_model

    text = notebook.script(spec_for("lora", target_modules=["key", "ffn"], rank=4))
    assert f'target_modules=r"{base_model.module_regex(["key", "ffn"])}"' in text
    text = notebook.script(spec_for("ia3", target_modules=["key"]))
    assert "feedforward_modules=[]" in text


def test_ia3s_script_scales_the_ffns_inner_activation_only():
    """As in Liu et al. 2022: the input of the FFN's second matrix, not of its first, and not of
    the attention output (which peft's default "output.dense" would also find)."""
    import re

    text = notebook.script(spec_for("ia3"))
    targets = re.search(r'target_modules=r"([^"]+)"', text).group(1)
    feedforward = re.search(r'feedforward_modules=r"([^"]+)"', text).group(1)
    layer = "bert.encoder.layer.3."
    found = [m for m in NAMES if re.fullmatch(targets, layer + m)]
    assert found == ["attention.self.key", "attention.self.value", "output.dense"]
    assert [m for m in NAMES if re.fullmatch(feedforward, layer + m)] == ["output.dense"]


NAMES = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
]


@pytest.mark.parametrize("method", sorted(notebook.LAB_CODE))
def test_the_code_copied_from_the_lab_is_the_labs_source_text(method):
    filename, names = notebook.LAB_CODE[method]
    source = (notebook.HERE / filename).read_text()
    copied = notebook.lab_source(filename, names)
    tree = ast.parse(source)
    for node in tree.body:
        name = getattr(node, "name", None) or next(
            (t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)), None
        )
        if name in names:
            assert ast.get_source_segment(source, node) in copied
    assert f"model = {copied.split('def ')[-1].split('(')[0]}(" in notebook.script(spec_for(method))


def test_copying_a_definition_the_lab_does_not_have_fails_loudly():
    with pytest.raises(LookupError, match="no \\['nothing_here'\\]"):
        notebook.lab_source("bitfit.py", ("apply_bitfit", "nothing_here"))


def test_the_notebook_is_nbformat_4_and_its_code_cells_run_in_order_as_one_program():
    spec = spec_for("adapter", bottleneck=8)
    nb = notebook.notebook(spec, run_id=3)
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 5
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["peftlab"] == {"run": 3, **spec.as_dict()}
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids)
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code") and isinstance(cell["source"], list)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    code = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    compile(code, "notebook", "exec")
    assert "BOTTLENECK = 8" in code
    json.dumps(nb)  # plain JSON all the way down


def test_a_run_on_a_subset_of_the_data_reproduces_the_labs_balanced_subset():
    text = notebook.script(spec_for("bitfit", train_examples=40))
    compile(text, "script", "exec")
    assert "def balanced_subset(" in text and "TRAIN_EXAMPLES = 40" in text
    assert "balanced_subset" not in notebook.script(spec_for("bitfit"))


# --- the API --------------------------------------------------------------------------------------
@pytest.fixture
def client():
    return Client()


def make_run(method="lora", task="sentiment", steps=4, status=Run.SUCCEEDED, accuracy=0.7, **metrics):
    spec = methods.validate_run(method, task, steps, 0, {})
    run = Run.objects.create(
        method=method,
        task=task,
        steps=steps,
        seed=0,
        params=spec.params,
        status=status,
        device="cpu",
        steps_done=steps,
        metrics={
            "val_accuracy": accuracy,
            "trainable_params": 1000,
            "trainable_percent": 0.1,
            "peak_memory_bytes": 10 * 2**20,
            "train_seconds": 5.0,
            "val_loss": 0.5,
            "peak_memory_source": "cpu: counted",
            **metrics,
        }
        if status == Run.SUCCEEDED
        else {},
    )
    Point.objects.bulk_create([Point(run=run, step=s, loss=1.0 / s, elapsed=0.1 * s) for s in range(1, steps + 1)])
    if accuracy is not None:
        EvalPoint.objects.create(run=run, step=steps, val_loss=0.5, val_accuracy=accuracy)
    return run


@pytest.mark.django_db
def test_the_script_and_the_notebook_of_a_run_are_served(client):
    run = make_run("prompt")
    response = client.get(f"/api/runs/{run.pk}/script.py")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/x-python")
    assert f'filename="peftlab-run-{run.pk}-prompt.py"' in response["Content-Disposition"]
    compile(response.content.decode(), "script", "exec")
    assert "What the lab measured" in response.content.decode()

    response = client.get(f"/api/runs/{run.pk}/notebook.ipynb")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert json.loads(response.content)["metadata"]["peftlab"]["method"] == "prompt"


@pytest.mark.django_db
def test_an_unfinished_run_gets_its_code_without_measurements(client):
    run = make_run(status=Run.QUEUED)
    text = client.get(f"/api/runs/{run.pk}/script.py").content.decode()
    assert "METHOD = 'lora'" in text and "What the lab measured" not in text


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["script.py", "notebook.ipynb"])
def test_the_code_of_a_run_that_does_not_exist_is_a_404(client, path):
    response = client.get(f"/api/runs/999999/{path}")
    assert response.status_code == 404
    assert response.json() == {"error": "there is no run 999999"}


@pytest.mark.django_db
def test_a_run_whose_stored_configuration_no_longer_validates_is_a_409(client):
    run = make_run()
    Run.objects.filter(pk=run.pk).update(method="gone")
    response = client.get(f"/api/runs/{run.pk}/script.py")
    assert response.status_code == 409 and "cannot be reproduced" in response.json()["error"]


@pytest.mark.django_db
def test_compare_returns_the_runs_in_the_order_asked_with_points_and_metrics(client):
    a, b, c = make_run("lora"), make_run("bitfit", status=Run.FAILED), make_run("prompt", status=Run.CANCELLED)
    response = client.get(f"/api/compare?runs={c.pk},{a.pk},{b.pk},{a.pk}")
    assert response.status_code == 200
    runs = response.json()["runs"]
    assert [r["id"] for r in runs] == [c.pk, a.pk, b.pk]  # a duplicate id counts once
    assert runs[1]["label"] == "LoRA" and runs[1]["metrics"]["val_accuracy"] == 0.7
    assert [p["step"] for p in runs[1]["points"]] == [1, 2, 3, 4]
    assert runs[1]["evals"] == [{"step": 4, "val_loss": 0.5, "val_accuracy": 0.7}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, status, message",
    [
        ("", 400, "runs: Field required"),  # required in the OpenAPI document as in the code
        ("runs=", 400, "run ids separated by commas"),
        ("runs=1,,2", 400, "run ids separated by commas"),
        ("runs=abc", 400, "run ids separated by commas"),
        ("runs=-1", 400, "run ids separated by commas"),
        ("runs=" + ",".join(str(i) for i in range(1, MAX_COMPARED + 2)), 400, f"at most {MAX_COMPARED}"),
        ("runs=999998", 404, "there is no run 999998"),
    ],
)
def test_compare_refuses_bad_selections_with_a_message(client, query, status, message):
    response = client.get(f"/api/compare?{query}")
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    assert set(response.json()) == {"error"}


@pytest.mark.django_db
def test_compare_refuses_a_run_that_has_not_finished(client):
    done, running = make_run(), make_run(status=Run.RUNNING)
    response = client.get(f"/api/compare?runs={done.pk},{running.pk}")
    assert response.status_code == 409
    assert response.json() == {"error": f"run {running.pk} is running; only finished runs can be compared"}


@pytest.mark.django_db
def test_pareto_gives_every_succeeded_run_of_the_task_and_a_front_for_each_cost(client):
    cheap = make_run("bitfit", accuracy=0.6, trainable_params=100, peak_memory_bytes=900, train_seconds=9.0)
    best = make_run("full", accuracy=0.9, trainable_params=10_000, peak_memory_bytes=800, train_seconds=20.0)
    beaten = make_run("lora", accuracy=0.5, trainable_params=5_000, peak_memory_bytes=1000, train_seconds=30.0)
    make_run("lora", status=Run.FAILED)
    make_run("lora", task="topic", accuracy=0.99)
    no_accuracy = make_run("prompt", accuracy=None)
    body = client.get("/api/pareto?task=sentiment").json()
    assert body["task"] == "sentiment" and set(body["costs"]) == set(COSTS) == {"params", "memory", "time"}
    assert {r["id"] for r in body["runs"]} == {cheap.pk, best.pk, beaten.pk}
    assert no_accuracy.pk not in {r["id"] for r in body["runs"]}
    assert body["fronts"] == {"params": [cheap.pk, best.pk], "memory": [best.pk], "time": [cheap.pk, best.pk]}
    point = next(r for r in body["runs"] if r["id"] == cheap.pk)
    assert (point["params"], point["memory"], point["time"], point["val_accuracy"]) == (100, 900, 9.0, 0.6)
    assert point["label"] == "BitFit" and body["truncated"] is False


@pytest.mark.django_db
def test_a_run_without_a_cost_is_plotted_on_the_other_costs_only(client):
    run = make_run(peak_memory_bytes=None)
    body = client.get("/api/pareto?task=sentiment").json()
    assert body["runs"][0]["memory"] is None
    assert body["fronts"] == {"params": [run.pk], "memory": [], "time": [run.pk]}


@pytest.mark.django_db
@pytest.mark.parametrize("query, message", [("task=nope", "unknown task 'nope'"), ("", "task")])
def test_pareto_refuses_an_unknown_or_missing_task(client, query, message):
    response = client.get(f"/api/pareto?{query}")
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, marker", [("/compare/?runs=1,2", 'id="compare-root"'), ("/pareto/?task=topic&x=time", 'id="pareto-root"')]
)
def test_the_pages_render_and_the_header_links_the_compare_page(client, url, marker):
    html = client.get(url).content.decode()
    assert marker in html and 'href="/compare/"' in html
    assert "vendor/plotly/plotly-cartesian.min.js" in html
