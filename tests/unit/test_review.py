"""P21 quizzes: well-formed questions whose numbers come from the formulas."""

import pytest

from simulations import params, quizzes


def all_questions():
    return [q for qs in quizzes.QUIZZES.values() for q in qs]


def test_every_question_has_one_right_answer_and_every_choice_says_why():
    ids = [q.id for q in all_questions()]
    assert len(ids) == len(set(ids))
    for q in all_questions():
        assert sum(c.correct for c in q.choices) == 1, q.id
        assert len(q.choices) >= 3, q.id
        assert all(len(c.why) > 20 for c in q.choices), q.id


def test_every_teaching_chapter_has_a_quiz():
    from peftlab.pages.chapters import CHAPTERS

    assert {ch.number for ch in CHAPTERS if ch.number != 10} <= set(quizzes.QUIZZES)


def answer(question_id):
    q = next(q for q in all_questions() if q.id == question_id)
    return next(c for c in q.choices if c.correct)


def test_the_lora_question_uses_the_seed_figure():
    # Seed 001 ch3: r = 8 on a 4096×4096 matrix is 65,536 parameters, 0.39 % of the matrix.
    right = answer("lora-count")
    assert right.text == f"{params.lora_matrix_params(4096, 4096, 8):,}" == "65,536"
    assert "0.39 %" in right.why


def test_the_adapter_and_prefix_questions_use_the_seed_figures():
    # Seed 000: an adapter with m = 64 on d = 1024 has 131,072 weights; prefix tuning with 20
    # tokens × 32 layers × 2 × 4096 trains 5.2M numbers.
    assert answer("adapter-count").text == "131,072"
    assert answer("prefix-count").text == "5,242,880"


def test_the_order_of_choices_is_stable_and_not_always_right_first():
    first = quizzes.as_json()
    assert first == quizzes.as_json()
    firsts = [q["choices"][0]["correct"] for qs in first.values() for q in qs]
    assert not all(firsts)


@pytest.mark.django_db
def test_it_serves_the_quizzes_with_chapter_titles(client):
    body = client.get("/api/playgrounds/quiz").json()
    assert body[0]["chapter"] == 1 and body[0]["title"] == "What fine-tuning costs"
    assert all(len(q["choices"]) >= 3 for chapter in body for q in chapter["questions"])


def test_the_cheat_sheet_reproduces_the_source_figures():
    from simulations import cheatsheet
    from workers import base_model

    rows = {r["quantity"]: r["value"] for r in cheatsheet.rows(base_model.dimensions())}
    assert rows["LoRA, one matrix"] == 65_536  # seed 001 ch3
    assert round(rows["… as a share of the matrix"], 2) == 0.39  # seed 001 ch9: ~0.4 %
    assert rows["Bottleneck adapter"] == 131_072  # seed 000
    assert round(rows["Prefix tuning"] / 1e6, 1) == 5.2  # seed 000
    assert round(rows["Full fine-tuning, mixed precision Adam"], 1) == 2.1  # seed 000: ≈ 2.1 TB
    assert round(rows["QLoRA base"] - 4, 3) == 0.127  # seed 001 ch6
    assert rows["LoRA on all-MiniLM-L6-v2, query + value"] == 73_728  # 2·384·8·2·6


def test_the_cheat_sheet_counts_what_a_lab_run_counts():
    """The trainable count every LoRA run reports (74,498 in docs/measurements.md) is the LoRA
    matrices plus the classifier head; the cheat sheet shows both and the run's formula agrees."""
    from simulations import cheatsheet, params
    from simulations.methods import METHODS
    from workers import base_model

    dims = base_model.dimensions()
    rows = {r["quantity"]: r for r in cheatsheet.rows(dims)}
    matrices = rows["LoRA on all-MiniLM-L6-v2, query + value"]["value"]
    with_head = rows["… with the classifier head, as a run counts it"]
    assert with_head["value"] - matrices == params.classifier_head_params(dims.hidden, 2) == 770
    assert with_head["value"] == 74_498
    lab_defaults = {p.name: p.default for p in METHODS["lora"].params}
    assert lab_defaults["rank"] == 8 and sorted(lab_defaults["target_modules"]) == ["query", "value"]
    assert with_head["value"] == params.trainable_params("lora", lab_defaults, dims, num_labels=2)
    assert "measured on every lab LoRA run" in with_head["source"]
    assert "measured" not in rows["LoRA on all-MiniLM-L6-v2, query + value"]["source"]


@pytest.mark.django_db
def test_it_serves_the_cheat_sheet(client):
    body = client.get("/api/playgrounds/cheat-sheet").json()
    assert {"quantity", "formula", "example", "value", "unit", "source"} == set(body[0])


def test_the_prefix_against_prompt_question_uses_the_formulas():
    # Seeds 000 and 004: prefix tuning trains n·2·d·L, prompt tuning n·d: 24× on 12 layers.
    assert answer("prefix-vs-prompt").text == "24×"
    assert params.prefix_params(20, 768, 12) == 24 * params.prompt_params(20, 768)


def test_the_calibration_question_does_the_arithmetic():
    # Seed 000 / Zhao et al. 2021: divide by the content-free probabilities, renormalise.
    # 0.6/0.7 = 0.857, 0.4/0.3 = 1.333 → 0.39 / 0.61.
    assert answer("calibration").text == "Negative: 0.39 Positive against 0.61 Negative"
