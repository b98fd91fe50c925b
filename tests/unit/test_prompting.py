"""P3–P5, chapter 2 (adapting without training): simulations/prompting.py and its endpoints.

Seed 000 (../shared/seeds/000_*.txt) is the prompting/LoRA/adapters lecture; its in-context
learning, prompt sensitivity and chain-of-thought sections give every figure checked here.
"""

import numpy as np
import pytest

from peftlab.playgrounds.prompting import count_tokens
from simulations import prompting


def words(text: str) -> int:
    # A stand-in counter for the pure functions: one token per whitespace-separated word.
    return len(text.split())


# --- the tokenizer --------------------------------------------------------------------------------


def test_it_counts_wordpiece_tokens_without_the_shipped_128_truncation():
    assert count_tokens("Review: The food was excellent") == 6  # review : the food was excellent
    long = " ".join(["excellent"] * 300)
    assert count_tokens(long) == 300  # tokenizer.json truncates to 128 unless told not to


# --- P3 prompts and tokens ------------------------------------------------------------------------


def test_it_builds_zero_one_and_few_shot_prompts_that_grow():
    # Seed 000: zero-shot describes the task with no example, one-shot adds one, few-shot 4-32.
    zero, one, few = (prompting.few_shot_prompt(k) for k in (0, 1, 4))
    assert zero == f"{prompting.INSTRUCTION}\n\n{prompting.query_block(prompting.DEFAULT_QUERY)}"
    assert one.count("Sentiment: ") == 1 and few.count("Sentiment: ") == 4
    assert len(zero) < len(one) < len(few)
    assert all(p.endswith("Sentiment:") for p in (zero, one, few))
    assert prompting.example_block("Great.", "Positive") == "Review: Great.\nSentiment: Positive\n\n"
    with pytest.raises(ValueError, match="k must be between 0 and 32"):
        prompting.few_shot_prompt(33)


def test_the_pool_is_balanced_and_holds_the_seeds_largest_few_shot():
    # Seed 000: "Provide 4-32 examples"; GPT-3's SuperGLUE few-shot used 32.
    assert len(prompting.POOL) == prompting.SEED_ICL["few_shot_range"][1] == prompting.SUPERGLUE_SHOTS
    labels = [label for _, label in prompting.POOL]
    assert labels[::2] == [prompting.POSITIVE] * 16 and labels[1::2] == [prompting.NEGATIVE] * 16


def test_it_counts_every_prompt_on_its_real_text():
    tokens = prompting.prompt_tokens(words)
    assert tokens.by_k == [words(prompting.few_shot_prompt(k)) for k in range(33)]
    assert tokens.per_example[0] == words(prompting.example_block(*prompting.POOL[0]))
    assert tokens.answer == 1 and tokens.instruction == 10
    real = prompting.prompt_tokens(count_tokens)
    assert all(b > a for a, b in zip(real.by_k, real.by_k[1:]))
    assert real.by_k[0] == real.instruction + real.query  # WordPiece drops the blank lines


def test_it_finds_the_largest_k_that_leaves_room_for_the_answer():
    by_k = [50, 150, 250, 350]
    assert prompting.largest_k_that_fits(250, by_k, 1) == 1  # 250 + 1 > 250
    assert prompting.largest_k_that_fits(251, by_k, 1) == 2
    assert prompting.largest_k_that_fits(1000, by_k, 1) == 3
    assert prompting.largest_k_that_fits(40, by_k, 1) == -1


def test_it_reproduces_the_seeds_few_shot_arithmetic():
    # Seed 000: "4 examples, each ~100 tokens, plus a 50-token query. Total input: 450 tokens";
    # "16 examples × 100 tokens each = 1600 extra tokens per call".
    trace, cost = prompting.SEED_ICL["trace"], prompting.SEED_ICL["cost"]
    assert prompting.few_shot_budget(trace["k"], trace["per_example"], trace["query"]) == 450
    assert prompting.few_shot_budget(cost["k"], cost["per_example"], 0) == 1600
    # "With a 2048-token context window, you might fit 10-20 short examples": 100-token ones fit 19.
    assert prompting.examples_that_fit(2048, 100, 50) == 19
    assert prompting.examples_that_fit(10, 100, 50) == 0


def test_it_shows_the_seeds_two_window_claims_assume_different_example_sizes():
    # Seed 000: 10-20 examples in 2048 tokens, but "a 4K context can hold ~16 short examples".
    assert prompting.implied_tokens_per_example(4096, 16) == 256
    check = prompting.lecture_window_check()
    assert [round(x) for x in check["gpt3_per_example"]] == [102, 205]
    assert check["k4_per_example"] == 256
    assert [round(x) for x in check["k4_at_gpt3_sizes"]] == [20, 40]  # not 16


# --- P3 reported accuracy -------------------------------------------------------------------------


def test_the_superglue_table_holds_what_the_seed_says():
    # Seed 000's table "Zero-shot (SuperGLUE) | Few-shot (SuperGLUE) | Gap Closed by Few-shot".
    rows = [(r.model, r.params, r.zero_shot, r.few_shot, r.quoted_gap) for r in prompting.SUPERGLUE]
    assert rows == [
        ("GPT-3 Small", 125e6, 42.0, 43.1, 1.1),
        ("GPT-3 Medium", 350e6, 43.8, 46.5, 2.7),
        ("GPT-3 Large", 760e6, 45.2, 50.3, 5.1),
        ("GPT-3 XL", 1.3e9, 47.9, 55.1, 7.2),
        ("GPT-3", 175e9, 55.4, 71.8, 16.4),
    ]
    assert all("Brown et al. 2020" in r.source for r in prompting.SUPERGLUE)


def test_the_gap_column_is_few_shot_minus_zero_shot():
    # Seed 000: "zero-shot GPT-3 scored 55.4, while 32-shot GPT-3 scored 71.8 — a 16-point jump".
    assert [prompting.few_shot_gain(r) for r in prompting.SUPERGLUE] == [1.1, 2.7, 5.1, 7.2, 16.4]
    assert all(prompting.few_shot_gain(r) == r.quoted_gap for r in prompting.SUPERGLUE)


def test_the_gain_per_tenfold_does_not_accelerate_at_the_top():
    # Seed 000 calls the growth "superlinear"; per decade of parameters it is 9.0 points from
    # 760M to 1.3B but 4.3 from 1.3B to 175B.
    steps = prompting.gain_per_decade()
    assert [round(s["points_per_decade"], 1) for s in steps] == [3.6, 7.1, 9.0, 4.3]
    assert round(steps[-1]["decades"], 2) == 2.13


# --- P4 formats -----------------------------------------------------------------------------------


def test_it_writes_each_format_choice_into_the_prompt():
    # Seed 000's table: label words, separator ("Answer:" vs "\n" vs "=>"), instruction, ordering.
    p = prompting.formatted_prompt("goodbad", "arrow", "explicit", "negatives_last")
    assert p.startswith("Answer with exactly one word: Good or Bad.\n\n")
    assert p.count(" => Good") == 2 and p.count(" => Bad") == 2 and p.endswith("wait. =>")
    q = prompting.formatted_prompt("posneg", "newline", "none", "alternate_pos_last")
    assert q.endswith(f"{prompting.DEFAULT_QUERY}\n") and "Answer" not in q
    assert prompting.formatted_prompt("digits", "answer", "classify", "positives_last").startswith(
        "Classify this review."
    )
    with pytest.raises(ValueError, match="unknown format choice 'maybe'"):
        prompting.formatted_prompt("maybe", "arrow", "none", "negatives_last")


def test_the_orderings_reorder_the_same_four_examples():
    texts = {
        o: sorted(b for b in prompting.formatted_prompt("posneg", "answer", "none", o).split("\n\n")[:-1])
        for o in prompting.ORDERINGS
    }
    assert all(t == texts["negatives_last"] for t in texts.values())
    assert prompting.ordering_labels("alternate_pos_last") == ["Negative", "Positive", "Negative", "Positive"]
    assert prompting.ordering_labels("negatives_last") == ["Positive", "Positive", "Negative", "Negative"]


def test_it_lists_every_combination_with_its_tokens():
    formats = prompting.all_formats(words)
    assert len(formats) == 4 * 3 * 4 * 4
    key = prompting.format_key("posneg", "answer", "classify", "positives_last")
    assert formats[key]["tokens"] == words(formats[key]["prompt"])


def test_the_reported_format_swings_hold_what_the_seed_says():
    # Seed 000: "Up to 20%", "5-15%", "10-25%", "Up to 40% swing"; Zhao et al. SST-2 54% → 93%;
    # calibration "reduced accuracy variance across prompt formats from 40% to under 5%".
    got = {
        r.key: (r.low, r.high)
        for r in prompting.reported(
            "label_words",
            "separator",
            "instruction",
            "ordering",
            "sst2_order_worst",
            "sst2_order_best",
            "spread_uncalibrated",
            "spread_calibrated",
        )
    }
    assert got == {
        "label_words": (None, 20),
        "separator": (5, 15),
        "instruction": (10, 25),
        "ordering": (None, 40),
        "sst2_order_worst": (54, 54),
        "sst2_order_best": (93, 93),
        "spread_uncalibrated": (40, 40),
        "spread_calibrated": (None, 5),
    }
    assert "Zhao et al. 2021" in prompting.REPORTED_BY_KEY["sst2_order_best"].source
    assert all(r.source for r in prompting.REPORTED)
    # 93 − 54 = 39 points: inside the table's "up to 40".
    assert prompting.spread("sst2_order_worst", "sst2_order_best") == 39


# --- P4 calibration -------------------------------------------------------------------------------


def test_it_calibrates_the_seeds_example_to_079_not_081():
    # Seed 000: raw {Positive 0.9, Negative 0.1}, content-free {0.7, 0.3}, "{Positive: 0.81,
    # Negative: 0.19}". 0.9/0.7 = 1.2857, 0.1/0.3 = 0.3333, sum 1.6190 → 0.7941 / 0.2059.
    c = prompting.calibrate(0.9, 0.7)
    assert c.divided == pytest.approx((9 / 7, 1 / 3))
    assert c.total == pytest.approx(1.6190, abs=1e-4)
    assert c.calibrated == pytest.approx((0.7941, 0.2059), abs=1e-4)
    assert round(c.calibrated[0], 2) != prompting.SEED_CALIBRATION["source_says"]


def test_calibration_undoes_the_bias_and_leaves_an_unbiased_model_alone():
    # A raw answer equal to the content-free one is calibrated to 50/50; a bias of 0.5 changes nothing.
    assert prompting.calibrate(0.7, 0.7).calibrated == pytest.approx((0.5, 0.5))
    assert prompting.calibrate(0.83, 0.5).calibrated == pytest.approx((0.83, 0.17))
    # The calibrated answer flips where the raw p(Positive) equals the bias, not at 0.5.
    assert prompting.calibrate(0.69, 0.7).calibrated[0] < 0.5 < prompting.calibrate(0.71, 0.7).calibrated[0]
    with pytest.raises(ValueError, match="strictly between"):
        prompting.calibrate(0.5, 0.0)
    with pytest.raises(ValueError, match="raw probability"):
        prompting.calibrate(1.2, 0.5)


def test_the_grid_is_calibrate_at_every_slider_setting():
    grid = prompting.calibration_grid()
    assert grid["calibrated_pos"].shape == (99, 101)
    for b, r in [(0.7, 0.9), (0.01, 0.0), (0.99, 1.0), (0.35, 0.42)]:
        i, j = int(np.argmin(abs(prompting.BIAS_GRID - b))), int(np.argmin(abs(prompting.RAW_GRID - r)))
        c = prompting.calibrate(r, b)
        assert grid["divided_pos"][i, j] == pytest.approx(c.divided[0])
        assert grid["divided_neg"][i, j] == pytest.approx(c.divided[1])
        assert grid["total"][i, j] == pytest.approx(c.total)
        assert grid["calibrated_pos"][i, j] == pytest.approx(c.calibrated[0])
        assert grid["calibrated_neg"][i, j] == pytest.approx(c.calibrated[1])


# --- P5 chain of thought --------------------------------------------------------------------------


def test_it_solves_each_problem_step_by_step():
    answers = {}
    for p in prompting.PROBLEMS:
        steps = prompting.solve(p, prompting.default_values(p))
        assert len(steps) == len(p.steps) >= 3
        answers[p.key] = steps[-1]["result"]
    assert answers == {"bakery": 11, "pencils": 23, "reading": 480, "tickets": 3}
    bakery = prompting.solve(prompting.PROBLEMS[0], {"trays": 4, "per_tray": 12, "morning": 29, "afternoon": 8})
    assert [s["expression"] for s in bakery] == ["4 × 12 = 48", "29 + 8 = 37", "48 − 37 = 11"]
    assert bakery[2]["sentence"] == "That leaves 11 muffins."


def test_it_refuses_numbers_that_make_a_step_meaningless():
    pencils = prompting.PROBLEMS_BY_KEY["pencils"]
    with pytest.raises(ValueError, match="does not divide evenly"):
        prompting.solve(pencils, {"boxes": 7, "per_box": 24, "classes": 5, "given": 5})
    with pytest.raises(ValueError, match="negative count"):
        prompting.solve(prompting.PROBLEMS[0], {"trays": 1, "per_tray": 1, "morning": 29, "afternoon": 8})
    with pytest.raises(ValueError, match="must be a whole number from 1 to 999"):
        prompting.check_values(pencils, {"boxes": 0, "per_box": 24, "classes": 6, "given": 5})
    with pytest.raises(ValueError, match="needs exactly these numbers"):
        prompting.check_values(pencils, {"boxes": 7})
    assert prompting.parse_values("4, 12,29,8") == [4, 12, 29, 8]
    with pytest.raises(ValueError, match="whole numbers separated by commas"):
        prompting.parse_values("4,-1")


def test_it_writes_the_question_and_the_three_answers():
    p = prompting.PROBLEMS[0]
    values = prompting.default_values(p)
    assert values == {"trays": 4, "per_tray": 12, "morning": 29, "afternoon": 8}
    assert prompting.question_text(p, values).startswith("A bakery bakes 4 trays of 12 muffins.")
    steps = prompting.solve(p, values)
    assert prompting.direct_answer(11) == "The answer is 11."
    assert prompting.cot_answer(steps, 11).endswith("That leaves 11 muffins. The answer is 11.")
    assert prompting.zero_shot_cot_answer(steps, 11).endswith(prompting.zero_shot_final(11))
    assert prompting.cot_output("direct", steps, 11) == "The answer is 11."
    with pytest.raises(ValueError, match="mode must be one of"):
        prompting.cot_output("tree", steps, 11)


def test_the_prompts_differ_only_in_the_exemplar_and_the_trigger():
    # Seed 000: zero-shot CoT appends "Let's think step by step" with no examples (Kojima et al.).
    ex = prompting.exemplar_for(prompting.PROBLEMS[0])
    assert ex is not prompting.PROBLEMS[0] and prompting.exemplar_for(prompting.PROBLEMS[-1]) is prompting.PROBLEMS[0]
    ex_steps = prompting.solve(ex, prompting.default_values(ex))
    exemplar = ("Q?", ex_steps, 23)
    direct = prompting.cot_prompt("direct", exemplar, "How many?")
    worked = prompting.cot_prompt("few_shot_cot", exemplar, "How many?")
    zero = prompting.cot_prompt("zero_shot_cot", exemplar, "How many?")
    assert direct == "Q: Q?\nA: The answer is 23.\n\nQ: How many?\nA:"
    assert ex_steps[0]["sentence"] in worked and ex_steps[0]["sentence"] not in direct
    assert zero == "Q: How many?\nA: Let's think step by step."
    with pytest.raises(ValueError):
        prompting.cot_prompt("tree", exemplar, "How many?")


def test_a_reasoned_answer_costs_more_tokens_than_a_direct_one():
    for p in prompting.PROBLEMS:
        out = prompting.chain_of_thought(p, prompting.default_values(p), count_tokens)
        modes = out["modes"]
        assert modes["direct"]["output"] == modes["direct"]["final"] == f"The answer is {out['answer']}."
        assert modes["few_shot_cot"]["output_tokens"] > 5 * modes["direct"]["output_tokens"]
        assert modes["zero_shot_cot"]["prompt_tokens"] < modes["direct"]["prompt_tokens"]
        assert modes["few_shot_cot"]["prompt_tokens"] > modes["direct"]["prompt_tokens"]


def test_the_reported_cot_figures_are_the_papers_own():
    # Kojima et al. 2022 (zero-shot CoT, "Let's think step by step", text-davinci-002): MultiArith
    # 17.7 → 78.7, GSM8K 10.4 → 40.7. Wei et al. 2022 (few-shot CoT, PaLM 540B): GSM8K 17.9 → 56.9.
    got = {r.key: (r.low, r.high) for r in prompting.REPORTED if r.key.startswith(("gsm8k", "multiarith", "cot_"))}
    assert got == {
        "gsm8k_kojima_standard": (10.4, 10.4),
        "gsm8k_kojima_zero_shot_cot": (40.7, 40.7),
        "gsm8k_wei_standard": (17.9, 17.9),
        "gsm8k_wei_few_shot_cot": (56.9, 56.9),
        "multiarith_kojima_standard": (17.7, 17.7),
        "multiarith_kojima_zero_shot_cot": (78.7, 78.7),
        "cot_arithmetic": (40, 60),
        "cot_logic": (20, 40),
        "cot_commonsense": (10, 20),
        "cot_classification": (None, None),
        "cot_factual": (0, 0),
        "cot_small_models": (10e9, 10e9),
    }
    for key, r in prompting.REPORTED_BY_KEY.items():
        if "kojima" in key:
            assert r.source.startswith("Kojima et al. 2022") and "text-davinci-002" in r.source
        if "wei" in key:
            assert r.source.startswith("Wei et al. 2022") and "PaLM 540B" in r.source
    # The trigger phrase is Kojima et al.'s, never credited to Wei et al.
    assert "step by step" in prompting.REPORTED_BY_KEY["gsm8k_kojima_zero_shot_cot"].label
    assert not [r for r in prompting.REPORTED if "step by step" in r.label and "Kojima" not in r.source]


def test_the_lectures_cot_figures_are_set_beside_the_papers():
    # The lecture: GSM8K 18 → 57 for "Let's think step by step" (credited to Wei et al.), → 79 with
    # worked chains; MultiArith 18 → 79, "a 61-percentage-point improvement from five words".
    lecture = prompting.LECTURE_COT
    assert round(prompting.REPORTED_BY_KEY["gsm8k_wei_standard"].high) == lecture["gsm8k"][0]
    assert round(prompting.REPORTED_BY_KEY["gsm8k_wei_few_shot_cot"].high) == lecture["gsm8k"][1]
    assert round(prompting.spread("multiarith_kojima_standard", "multiarith_kojima_zero_shot_cot")) == 61
    assert lecture["multiarith_gain"] == 61
    assert prompting.word_count(prompting.ZERO_SHOT_COT_TRIGGER) == lecture["trigger_words"]
    notes = prompting.cot_notes()
    assert "Wei et al.'s PaLM 540B figures with eight worked examples, 17.9% → 56.9% (+39.0 points)" in notes[0]
    assert "Kojima et al.'s zero-shot CoT; on GSM8K they report 10.4% → 40.7% (+30.3)" in notes[0]
    assert "17.7% → 78.7% rounded: +61.0 points" in notes[1]
    assert "79%" in notes[2] and "not a figure this lab found" in notes[2]
    assert prompting.REPORTED_BY_KEY["self_consistency"].low == 5


def test_it_checks_a_typed_review():
    assert prompting.check_query("  Loved   it ") == "Loved it"
    with pytest.raises(ValueError, match="must not be empty"):
        prompting.check_query("   ")
    with pytest.raises(ValueError, match="at most 300 characters"):
        prompting.check_query("x" * 301)


# --- the endpoints --------------------------------------------------------------------------------


def test_it_serves_every_k_and_window(client):
    resp = client.get("/api/playgrounds/in-context-learning")
    assert resp.status_code == 200
    data = resp.json()
    assert data["ks"] == list(range(33)) and len(data["prompts"]) == len(data["tokens"]) == 33
    assert data["tokens"][4] == count_tokens(prompting.few_shot_prompt(4))
    windows = {w["key"]: w for w in data["windows"]}
    assert windows["minilm-seq"]["size"] == 256 and windows["minilm"]["size"] == 512
    assert windows["gpt3"]["size"] == 2048 and windows["4k"]["size"] == 4096
    k = windows["minilm-seq"]["fits"]
    assert data["tokens"][k] + data["answer_tokens"] <= 256 < data["tokens"][k + 1] + data["answer_tokens"]
    assert windows["gpt3"]["fits"] == 32
    assert [r["gain"] for r in data["superglue"]["rows"]] == [1.1, 2.7, 5.1, 7.2, 16.4]
    assert data["lecture"]["trace"]["computed"] == 450 and data["lecture"]["cost"]["computed"] == 1600
    assert "WordPiece" in data["tokenizer_note"] and "BPE" in data["tokenizer_note"]


def test_a_typed_review_is_counted_by_the_server(client):
    data = client.get("/api/playgrounds/in-context-learning", {"query": "Cold soup, rude staff."}).json()
    assert data["query"] == "Cold soup, rude staff."
    assert data["prompts"][0].endswith("Review: Cold soup, rude staff.\nSentiment:")
    assert data["query_tokens"] == count_tokens("Review: Cold soup, rude staff.\nSentiment:")


def test_it_serves_every_format_and_the_calibration_grid(client):
    resp = client.get("/api/playgrounds/prompt-sensitivity")
    assert resp.status_code == 200
    data = resp.json()
    assert len(data["formats"]) == 192
    d = data["defaults"]
    key = prompting.format_key(d["labels"], d["separator"], d["instruction"], d["ordering"])
    assert data["formats"][key]["tokens"] == count_tokens(data["formats"][key]["prompt"])
    cal = data["calibration"]
    i, j = cal["bias"].index(0.7), cal["raw"].index(0.9)
    assert cal["calibrated_pos"][i][j] == 0.7941 and cal["calibrated_neg"][i][j] == 0.2059
    assert cal["worked_example"]["calibrated"] == [0.7941, 0.2059] and cal["worked_example"]["source_says"] == 0.81
    assert data["sst2"]["spread"] == 39
    assert cal["content_free_prompt"] == "Review: N/A\nSentiment:"


def test_it_serves_the_problems_and_redoes_the_arithmetic_for_new_numbers(client):
    data = client.get("/api/playgrounds/chain-of-thought").json()
    assert data["problem"] == "bakery" and [p["answer"] for p in data["problems"]] == [11, 23, 480, 3]
    assert set(data["problems"][0]["modes"]) == {"direct", "few_shot_cot", "zero_shot_cot"}
    assert data["reported"]["gains"] == {
        "GSM8K · InstructGPT": 30.3,
        "GSM8K · PaLM 540B": 39.0,
        "MultiArith · InstructGPT": 61.0,
    }
    assert data["reported"]["notes"] == prompting.cot_notes()
    data = client.get("/api/playgrounds/chain-of-thought", {"problem": "pencils", "values": "8,30,12,3"}).json()
    pencils = data["problems"][1]
    assert [s["expression"] for s in pencils["steps"]] == ["8 × 30 = 240", "240 ÷ 12 = 20", "20 − 3 = 17"]
    assert pencils["answer"] == 17 and data["problems"][0]["answer"] == 11


@pytest.mark.parametrize(
    "url, query, phrase",
    [
        ("in-context-learning", {"query": ""}, "query must not be empty"),
        ("in-context-learning", {"query": "y" * 301}, "at most 300 characters"),
        ("prompt-sensitivity", {"query": " "}, "query must not be empty"),
        ("chain-of-thought", {"problem": "trains"}, "problem must be one of bakery"),
        ("chain-of-thought", {"values": "4,12"}, "bakery takes 4 values"),
        ("chain-of-thought", {"values": "4,twelve,29,8"}, "whole numbers separated by commas"),
        ("chain-of-thought", {"values": "4,12,0,8"}, "morning must be a whole number from 1 to 999"),
        ("chain-of-thought", {"problem": "pencils", "values": "7,24,5,5"}, "does not divide evenly"),
        ("chain-of-thought", {"values": "1,1,29,8"}, "negative count"),
    ],
)
def test_it_answers_bad_settings_with_400(client, url, query, phrase):
    resp = client.get(f"/api/playgrounds/{url}", query)
    assert resp.status_code == 400
    assert phrase in resp.json()["error"]
