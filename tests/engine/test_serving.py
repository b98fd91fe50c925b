"""Chapter 6, serving many tasks: P13 merge-and-swap and P20 freeze-attach-merge.

The math in simulations/serving.py, the demo predictions a run stores (workers/demo.py), the two
endpoints, and one real LoRA run whose merged and unmerged predictions must agree.

Seed documents are in ../shared/seeds/: 000 = prompting/LoRA/adapters lecture, 001 = LoRA & PEFT
chapters, 002 = the LoRA (2021) paper page, 003 = "LoRA and the efficiency revolution".
"""

import pytest

from peftlab.runs.models import Run
from simulations import memory, serving, sources
from workers import base_model, datasets, demo
from workers.base_model import memory_model as minilm

API = "/api/playgrounds"


# --- storage of N tasks (P13) -------------------------------------------------------------------


def test_it_stores_ten_7b_copies_in_140_gb():
    # seed 001 ch0: "A 7B model in 16-bit weights is 14 GB ... ten complete 14 GB copies — 140 GB".
    story = serving.storage_story(serving.storage_models(minilm()))["llama-7b"]["ranks"]["8"]
    assert story["copy_bytes"] == 14e9
    assert story["full_copies"][9] == 140e9
    assert story["tasks"][:3] == [1, 2, 3] and len(story["tasks"]) == serving.TASKS_MAX


def test_a_hundred_adapters_take_less_than_one_copy():
    # seed 001 ch3: "a hundred task adapters cost less storage than one full fine-tuned copy";
    # LoRA r = 8 on Q and V of the 7B shape: 2·4096·8·2·32 = 4,194,304 params, 8.4 MB at 16-bit.
    story = serving.storage_story({"llama-7b": serving.storage_models(minilm())["llama-7b"]})
    r8 = story["llama-7b"]["ranks"]["8"]
    assert r8["adapter_params"] == 4_194_304
    assert r8["adapter_bytes"] == 8_388_608
    assert 100 * r8["adapter_bytes"] < r8["copy_bytes"]
    assert r8["base_plus_adapters"][99] == r8["copy_bytes"] + 100 * r8["adapter_bytes"]
    assert r8["saving"][0] < 1 < r8["saving"][1]  # one task: the adapter is pure overhead
    assert r8["saving"][9] == pytest.approx(140e9 / (14e9 + 10 * 8_388_608))


def test_it_offers_the_seed_models_at_their_nominal_sizes():
    # seed 000: GPT-3's frozen base is 350 GB; seed 001 ch6: a 65B model in 16-bit is 130 GB.
    models = serving.storage_models(minilm())
    assert list(models) == ["lab", "bert-base", "llama-7b", "llama-65b", "gpt3-175b"]
    assert models["gpt3-175b"].total_params() * serving.FP16_BYTES == 350e9
    assert models["llama-65b"].total_params() * serving.FP16_BYTES == 130e9
    assert models["lab"].total_params() == serving.bert_total(base_model.dimensions())
    story = serving.storage_story(models, ranks=(1, 4))
    assert set(story["gpt3-175b"]["ranks"]) == {"1", "4"}


def test_the_seed_notes_recompute_the_26_task_table():
    # seed 000: 26 GPT-3 tasks, "350 GB × 26 ~9.1 TB" against "~351 GB", "a 26x storage
    # reduction", with "~25 MB" per m = 64 adapter. 25 MB is BERT-large's adapters in fp32
    # (6.3M weights); GPT-3-sized ones are 604 MB at 16-bit.
    assert serving.bert_large_adapter_bytes() == 25_165_824
    assert serving.gpt3_adapter_bytes() == 603_979_776
    notes = serving.source_notes()
    assert [n["source"].split(" (")[0] for n in notes] == [
        "the LoRA course, chapter 0",
        sources.LECTURE,
        sources.LECTURE,
    ]
    text = notes[1]["text"]
    assert "9.10 TB" in text and "26× less" in text and "604.0 MB" in text and "25.2 MB" in text
    assert "14.0 GB, ten copies 140.0 GB" in notes[0]["text"]


# --- the lab's own files (P13) ------------------------------------------------------------------


def test_it_sizes_the_labs_adapters_and_a_full_copy_by_formula():
    # The lab saves fp32: a LoRA run's A and B on Q and V (2·384·r per matrix × 2 × 6 layers)
    # plus its head (384·labels + labels); a full copy is the encoder (22.6M parameters: no pooler) + head.
    dims = base_model.dimensions()
    assert serving.lab_adapter_bytes(dims, 4, ["query", "value"], 4) == 4 * (36_864 + 1_540) == 153_616
    assert serving.lab_full_bytes(dims, 2) == 4 * (22_565_376 + 770)
    rows = serving.illustration(dims, {"sentiment": 2, "topic": 4})
    assert [(r["task"], r["rank"]) for r in rows] == [("sentiment", 4), ("sentiment", 8), ("topic", 4), ("topic", 8)]
    assert all(r["adapter_bytes"] < r["full_bytes"] / 250 for r in rows)


# --- P20 -----------------------------------------------------------------------------------------


def test_it_collapses_a_4096_matrix_to_65536_at_rank_8():
    # seed 001 ch3: "4096² = 16,777,216 ... 2 × 4096 × 8 = 65,536 ... 0.39%".
    t = serving.freeze_attach_table()
    i, j = t["hidden"].index(4096), t["ranks"].index(8)
    assert t["full"][i] == 16_777_216
    assert t["lora"][i][j] == 65_536
    assert round(100 * t["share"][i][j], 2) == 0.39
    assert t["fewer"][i][j] == 256 and t["factor"][i][j] == 32_768
    assert t["lora_bytes"][i][j] == 131_072 and t["full_bytes"][i] == 33_554_432
    assert serving.FREEZE_DEFAULT == {"d": 4096, "r": 8}


def test_it_leaves_out_ranks_above_d():
    t = serving.freeze_attach_table(hidden_sizes=(64,), ranks=(32, 64, 128))
    assert t["lora"] == [[4096, 8192, None]]  # r = 32 = d/2 breaks even with d² = 4096
    assert t["share"][0][2] is None and t["break_even"] == [32]


def test_gpt3_reduction_brackets_the_reported_10000x():
    # seed 002: "up to ten-thousand-fold fewer trainable parameters on GPT-3 175B"; seed 000:
    # "4.7 million parameters instead of 175 billion — a 37,000x reduction" (Q and V at r = 1).
    rows = {row["rank"]: row for row in serving.gpt3_reduction()}
    assert rows[1]["lora_params"] == 4_718_592
    assert round(rows[1]["reduction"], -3) == 37_000
    assert round(rows[4]["reduction"]) == 9_272
    assert rows[2]["reduction"] > 10_000 > rows[4]["reduction"]


def test_the_reported_table_holds_what_the_paper_walk_through_says():
    # The LoRA paper walk-through: "Trainable parameters 10,000×", "GPU memory ~3×", "Inference latency 0 ms".
    rows = {r["key"]: r for r in serving.REPORTED}
    assert rows["trainable_reduction"]["value"] == 10_000
    assert rows["memory_reduction"]["value"] == 3
    assert rows["added_latency"]["value"] == 0 and rows["added_latency"]["unit"] == "ms"
    assert all(r["source"] == sources.PAPER_TOUR and r["paper"] == "Hu et al. 2021 (LoRA)" for r in rows.values())


# --- demo sentences (workers/demo.py) -----------------------------------------------------------


def test_every_task_has_demo_sentences_with_its_own_labels_and_none_from_its_data():
    for name in datasets.task_names():
        task = datasets.load_task(name)
        pairs = demo.sentences(name)
        assert len(pairs) == 6
        assert {label for _, label in pairs} <= set(task.labels)
        if name in demo.DEMO_SENTENCES:
            seen = {e.text for e in task.train + task.val}
            assert not seen & {text for text, _ in pairs}


def test_a_task_without_its_own_sentences_shows_its_first_validation_examples(monkeypatch):
    monkeypatch.setattr(demo, "DEMO_SENTENCES", {})
    task = datasets.load_task("topic")
    assert demo.sentences("topic")[0] == (task.val[0].text, task.labels[task.val[0].label])


def test_record_keeps_probabilities_and_the_largest_logit_change():
    import torch

    unmerged = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.0], [0.0, 0.0], [3.0, -3.0]])
    out = demo.record("sentiment", unmerged, unmerged + 1e-3 * torch.arange(12.0).reshape(6, 2))
    assert out["labels"] == ["negative", "positive"] and len(out["texts"]) == 6
    assert out["probs"][2] == [0.5, 0.5]
    assert out["max_abs_logit_diff"] == pytest.approx(0.011, rel=1e-4)
    only = demo.record("sentiment", unmerged)
    assert only["probs_merged"] is None and only["max_abs_logit_diff"] is None


# --- the endpoints ------------------------------------------------------------------------------


def demo_metrics(task="sentiment", diff=2e-7):
    labels = list(datasets.load_task(task).labels)
    even = [1 / len(labels)] * len(labels)
    return {
        "texts": [t for t, _ in demo.sentences(task)],
        "expected": [label for _, label in demo.sentences(task)],
        "labels": labels,
        "probs": [even] * 6,
        "probs_merged": [even] * 6,
        "max_abs_logit_diff": diff,
    }


def make_run(method="lora", task="sentiment", status=Run.SUCCEEDED, with_demo=True, rank=4, **extra):
    metrics = {"adapter_bytes": 163_991, "latency_batch": 32, "latency_ms": 94.2, "val_accuracy": 0.8}
    if method in ("lora", "dora", "qlora"):
        metrics.update(latency_merged_ms=90.5, merge_max_abs_diff=4.2e-7)
    if with_demo:
        metrics["demo"] = demo_metrics(task)
    metrics.update(extra)
    params = {"rank": rank, "alpha": 16.0, "target_modules": ["query", "value"]} if method != "bitfit" else {}
    return Run.objects.create(method=method, task=task, steps=20, params=params, status=status, metrics=metrics)


@pytest.mark.django_db
def test_merge_and_swap_lists_only_succeeded_merged_runs_newest_first(client):
    requantized = make_run(method="qlora")
    requantized.metrics["demo"]["max_abs_logit_diff"] = 0.05
    requantized.save()
    older = make_run(task="topic", rank=8)
    newer = make_run()
    make_run(status=Run.FAILED)
    make_run(method="bitfit")  # saved, but nothing to merge
    make_run(with_demo=False)  # trained before the demo predictions existed
    make_run(adapter_bytes=None)  # cancelled-like: nothing saved
    body = client.get(f"{API}/merge-and-swap").json()
    assert [r["id"] for r in body["runs"]] == [newer.pk, older.pk, requantized.pk]
    assert body["runs"][2]["merge_exact"] is False
    assert body["runs_without_demo"] == 1
    topic = body["runs"][1]
    assert topic["rank"] == 8 and topic["targets"] == ["query", "value"]
    assert topic["adapter_tensor_bytes_formula"] == serving.lab_adapter_bytes(
        base_model.dimensions(), 8, ["query", "value"], 4
    )
    assert topic["latency_ms"] == 94.2 and topic["latency_merged_ms"] == 90.5
    assert topic["merge_max_abs_diff"] == 4.2e-7
    assert topic["merge_exact"] is True
    assert topic["demo"]["labels"] == ["sports", "science", "business", "technology"]
    assert body["base"]["file_bytes"] == (base_model.model_path() / "model.safetensors").stat().st_size
    assert body["base"]["params"] == 22_565_376
    assert topic["adapter_share_of_base"] == pytest.approx(163_991 / body["base"]["file_bytes"])


@pytest.mark.django_db
def test_merge_and_swap_without_runs_still_has_the_illustration_and_the_storage_story(client):
    body = client.get(f"{API}/merge-and-swap").json()
    assert body["runs"] == [] and body["runs_without_demo"] == 0
    assert {r["task"] for r in body["illustration"]} == set(datasets.task_names())
    assert body["storage"]["llama-7b"]["ranks"]["8"]["copy_bytes"] == 14e9
    assert body["storage_ranks"] == list(serving.STORAGE_RANKS)
    assert body["storage_default"] == {"model": "llama-7b", "rank": 8, "tasks": 10}
    assert body["start_run"]["method"] == "lora" and body["start_run"]["task"] in datasets.task_names()
    assert [r["value"] for r in body["reported"]] == [10_000, 3, 0]
    assert len(body["notes"]) == 3


@pytest.mark.django_db
def test_merge_and_swap_honours_and_checks_the_limit(client):
    for _ in range(3):
        make_run()
    assert len(client.get(f"{API}/merge-and-swap?limit=2").json()["runs"]) == 2
    for bad in ("0", "201", "-1"):
        response = client.get(f"{API}/merge-and-swap?limit={bad}")
        assert response.status_code == 400
        assert "limit must be between 1 and 200" in response.json()["error"]
    response = client.get(f"{API}/merge-and-swap?limit=many")
    assert response.status_code == 400 and "limit" in response.json()["error"]


@pytest.mark.django_db
def test_freeze_attach_merge_serves_the_table_once_for_every_slider(client):
    body = client.get(f"{API}/freeze-attach-merge").json()
    t = body["table"]
    assert len(t["lora"]) == len(t["hidden"]) and len(t["lora"][0]) == len(t["ranks"])
    assert body["defaults"] == {"d": 4096, "r": 8}
    assert body["lab_hidden"] == 384 and 384 in t["hidden"]
    assert body["gpt3"]["rows"][0]["lora_params"] == 4_718_592 and body["gpt3"]["layers"] == 96
    assert client.post(f"{API}/freeze-attach-merge").status_code == 405


# --- a real run stores its demo predictions -----------------------------------------------------


@pytest.mark.slow
def test_a_real_lora_run_predicts_the_same_demo_sentences_merged_and_unmerged(tmp_path):
    from workers import training
    from workers.methods import validate_run

    spec = validate_run("lora", "sentiment", 30, 0, {"rank": 4, "lr": 5e-3})
    metrics = training.train(spec, lambda points, evals: True, save_dir=tmp_path)
    shown = metrics["demo"]
    assert shown["texts"] == [t for t, _ in demo.DEMO_SENTENCES["sentiment"]]
    assert shown["labels"] == ["negative", "positive"]
    before, after = shown["probs"], shown["probs_merged"]
    assert len(before) == len(after) == 6
    # The merge moved every logit by at most the measured difference; a probability (softmax,
    # slope at most 1/2) moves by no more than that.
    assert 0 < shown["max_abs_logit_diff"] < serving.ROUNDING_TOLERANCE
    assert metrics["merge_max_abs_diff"] < 1e-4
    for p, q in zip(before, after):
        assert sum(p) == pytest.approx(1)
        assert max(abs(a - b) for a, b in zip(p, q)) <= shown["max_abs_logit_diff"]
    # Training taught the head to tell the sentences apart.
    assert max(p[1] for p in before) - min(p[1] for p in before) > 0.1
    # The size on disk is the formula's tensors plus the file's header, then the config and manifest.
    formula = serving.lab_adapter_bytes(base_model.dimensions(), 4, ["query", "value"], 2)
    tensors = (tmp_path / "adapter_model.safetensors").stat().st_size
    assert formula < tensors < formula + 8_000
    assert tensors < metrics["adapter_bytes"] < tensors + 20_000
    assert memory.fmt_bytes(metrics["adapter_bytes"]).endswith("kB")
