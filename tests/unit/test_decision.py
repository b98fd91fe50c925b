"""P18 Decision tree: the tree reproduces the seeds' selection guides.

Seed 000 (scenario table after "This chapter gives you a decision framework") and seed 004
("Method Selection Guide" table): every scenario, answered as it implies, must reach the method
the seed recommends.
"""

import pytest

from simulations import decision, sources
from simulations.decision import recommend

ALL_NO = {q: "no" for q in decision.QUESTIONS}


@pytest.mark.parametrize("row", decision.scenario_table(), ids=lambda r: r["scenario"])
def test_every_seed_scenario_reaches_the_seed_method(row):
    # Seeds 000 and 004, the scenario tables: e.g. "Model too large for GPU memory -> QLoRA",
    # "BERT-style classification, many tasks -> Adapter (Pfeiffer)".
    assert row["agrees"], (row["scenario"], row["method"], row["guide_choice"])


def test_the_table_holds_every_seed_scenario():
    sources_ = [r["source"] for r in decision.scenario_table()]
    # 8 rows in the lecture's decision framework, 6 in the derivations post's selection guide.
    assert sources_.count(sources.LECTURE) == 8 and sources_.count(sources.DERIVATIONS) == 6


def test_named_rules_from_the_seeds():
    # seed 000: "Model too large for GPU memory | QLoRA"; seed 004: "Single 24-48 GB GPU, 30B+ model | QLoRA"
    assert recommend({"q1": "yes", "q2": "yes", "q3": "yes"})["method"] == "qlora"
    # seed 004: "Need zero inference overhead | LoRA + merge"
    assert recommend({**ALL_NO, "q1": "yes", "q2": "yes", "q7": "yes"})["method"] == "lora"
    # seed 004: "Very large base (>10B), many tasks | Prompt-Tuning"
    assert recommend({**ALL_NO, "q1": "yes", "q2": "yes", "q5": "yes"})["method"] == "prompt"
    # seed 000: "No labeled data at all | Zero/few-shot prompting" (nothing to train)
    r = recommend({"q1": "no"})
    assert r["method"] == "prompting" and not r["trainable"]
    # seed 000: "100K+ examples, full GPU cluster | Full fine-tuning"
    assert recommend({"q1": "yes", "q2": "yes", "q3": "no", "q4": "yes"})["method"] == "full"


def test_partial_answers_stop_at_the_next_question_and_ignore_answers_off_the_path():
    r = recommend({"q1": "yes", "q4": "yes"})
    assert r["path"] == ["q1", "q2"] and r["next"] == "q2" and r["leaf"] is None and r["method"] is None
    assert r["used"] == {"q1": "yes"}
    assert recommend({})["next"] == "q1"
    r = recommend({"q1": "yes", "q2": "no"})
    assert r["edges"] == [
        {"source": "q1", "target": "q2", "answer": "yes"},
        {"source": "q2", "target": "prompt_api", "answer": "no"},
    ]


def test_every_leaf_is_reachable_and_names_a_lab_method_or_prompting():
    reached = set()

    def walk(node, answers):
        r = recommend(answers)
        if r["leaf"]:
            reached.add(r["leaf"])
            return
        for a in ("yes", "no"):
            walk(node, {**answers, r["next"]: a})

    walk("q1", {})
    assert reached == set(decision.LEAVES)
    for leaf in decision.LEAVES.values():
        assert leaf["method"] in decision.TRAINABLE or leaf["method"] == "prompting"


def test_layout_centres_questions_over_their_children():
    pos = decision.layout()
    for nid, q in decision.QUESTIONS.items():
        assert pos[nid]["x"] == (pos[q["yes"]]["x"] + pos[q["no"]]["x"]) / 2
        assert pos[q["yes"]]["y"] == pos[nid]["y"] + 1
    xs = sorted(pos[leaf]["x"] for leaf in decision.LEAVES)
    assert xs == list(map(float, range(len(decision.LEAVES))))


def test_bad_answers_raise():
    with pytest.raises(ValueError, match="yes' or 'no"):
        recommend({"q1": "maybe"})
    with pytest.raises(ValueError, match="Unknown question"):
        recommend({"q99": "yes"})


def test_api_returns_tree_path_and_scenarios(client):
    resp = client.get("/api/playgrounds/decision-tree", {"q1": "yes", "q2": "yes", "q3": "yes"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["result"]["method"] == "qlora" and body["result"]["leaf"] == "qlora"
    assert {n["id"] for n in body["tree"]["nodes"]} == set(decision.QUESTIONS) | set(decision.LEAVES)
    assert len(body["tree"]["edges"]) == 2 * len(decision.QUESTIONS)
    assert len(body["scenarios"]) == len(decision.SCENARIOS)
    assert all(r["agrees"] for r in body["scenarios"])


def test_api_rejects_a_bad_answer(client):
    resp = client.get("/api/playgrounds/decision-tree", {"q1": "perhaps"})
    assert resp.status_code == 400
    assert "yes' or 'no" in resp.json()["error"]
