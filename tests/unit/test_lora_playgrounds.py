"""P10–P12, the LoRA chapter: the math in simulations/lora.py and its endpoints.

Seed documents are in ../shared/seeds/: 000 = prompting/LoRA/adapters lecture, 001 = LoRA & PEFT
chapters, 003 = "LoRA and the efficiency revolution", 004 = PEFT derivations + GLUE numbers.
"""

import numpy as np
import pytest

from simulations import lora
from simulations.params import lora_matrix_params
from workers import base_model

# --- P11 parameter counter ----------------------------------------------------------------------


def test_it_counts_r8_on_a_4096_matrix_as_65536_or_039_percent():
    # 001 ch3: "2 × 4096 × 8 = 65,536 parameters ... 2×8/4096 = 0.39%"; 003: "256x reduction".
    table = lora.per_matrix_table(hidden_sizes=(4096,), ranks=[8])
    assert table["lora"][0, 0] == 65_536
    assert table["full"][0] == 16_777_216  # 001: "4096² = 16,777,216"
    assert round(100 * table["share"][0, 0], 2) == 0.39
    assert table["full"][0] / table["lora"][0, 0] == 256
    assert table["break_even"][0] == 2048


def test_it_counts_gpt3_per_matrix_as_in_the_seed():
    # 000: "(12288 × 8) + (8 × 12288) = 197K", r=4 "98K", r=1 "24K", r=16 "393K", "770x".
    d = lora.GPT3_175B.hidden
    assert lora_matrix_params(d, d, 8) == 196_608
    assert lora_matrix_params(d, d, 4) == 98_304
    assert lora_matrix_params(d, d, 1) == 24_576
    assert lora_matrix_params(d, d, 16) == 393_216
    assert round(d * d / lora_matrix_params(d, d, 8)) == 768  # the seed rounds this to "770x"


def test_it_shows_the_llama_qv_table_is_twice_the_formula():
    # 003: "Trainable Params (7B model, QV only)": r=4 ~4.2M, 8 ~8.4M, 16 ~16.8M, 64 ~67.1M,
    # 256 ~268M. 2·d·r × 2 matrices × 32 layers gives half of each (2.1M at r=4); the quoted
    # figures are what Q, K, V and O (four matrices) give. The page shows the formula and says so.
    ranks = list(lora.SEED_LLAMA_QV)
    counts = lora.model_counts(lora.LLAMA_7B, ranks)
    assert [round(c / 1e5) / 10 for c in counts["QV"]] == [2.1, 4.2, 8.4, 33.6, 134.2]
    assert [round(c / 1e5) / 10 for c in counts["QKVO"]] == [4.2, 8.4, 16.8, 67.1, 268.4]
    for quoted, qkvo in zip(lora.SEED_LLAMA_QV.values(), counts["QKVO"]):
        assert quoted == pytest.approx(qkvo, rel=0.002)


def test_it_counts_llama_7b_as_6_74_billion():
    # 003: "A 7B parameter model (like LLaMA-2 7B)"; the exact count of that shape is 6,738,415,616.
    assert lora.LLAMA_7B.total_params == 6_738_415_616


def test_it_counts_gpt3_as_175_billion():
    # 000: "GPT-3 175B"; the config in lora.py gives 174.6B.
    assert lora.GPT3_175B.total_params == pytest.approx(175e9, rel=0.01)


def test_it_counts_bert_and_roberta_base():
    # BERT-base has about 110M parameters, RoBERTa-base about 125M (004 uses RoBERTa-base).
    assert lora.BERT_BASE.total_params == 109_482_240
    assert lora.ROBERTA_BASE.total_params == pytest.approx(125e6, rel=0.01)


def test_it_gives_roberta_base_lora_r8_qv_at_024_percent():
    # 004: "LoRA r=8 at 0.24% trainable parameters" on RoBERTa-base (Q and V, as in Hu et al.).
    qv = lora.ROBERTA_BASE.lora_params(lora.TARGET_SETS["QV"], 8)
    assert qv == 294_912
    assert round(100 * qv / lora.ROBERTA_BASE.total_params, 2) == 0.24


def test_it_counts_the_lab_base_model_from_its_config():
    # all-MiniLM-L6-v2: 6 layers, d=384, 22.7M parameters with its pooler (its model card), 22.6M
    # as the lab loads it (no pooler: workers/head.py).
    config = lora.bert_config("minilm", "MiniLM", base_model.dimensions(), "")
    assert config.hidden == 384 and config.layers == 6
    assert round((config.total_params + 384 * 384 + 384) / 1e5) / 10 == 22.7
    assert config.total_params == 22_565_376
    # QV at r=8: 2 matrices × 2·384·8 × 6 layers.
    assert config.lora_params(lora.TARGET_SETS["QV"], 8) == 2 * 2 * 384 * 8 * 6


def test_it_counts_the_ffn_by_its_real_shapes():
    # BERT's FFN is d×f and f×d: r·(d+f) each. LLaMA's gated FFN has gate, up and down.
    d, f = 768, 3072
    assert (lora.BERT_BASE.lora_params(("ffn",), 1)) == 2 * (d + f) * 12
    assert (lora.LLAMA_7B.lora_params(("ffn",), 1)) == 3 * (4096 + 11008) * 32


def test_it_agrees_with_the_engines_formula_for_the_base_model():
    # The worker predicts with params.trainable_params; the counter must give the same LoRA part.
    from simulations import params

    dims = base_model.dimensions()
    config = lora.bert_config("minilm", "MiniLM", dims, "")
    head = params.classifier_head_params(dims.hidden, 2)
    for name, targets in lora.TARGET_SETS.items():
        predicted = params.trainable_params("lora", {"rank": 4, "target_modules": list(targets)}, dims, 2)
        assert predicted == config.lora_params(targets, 4) + head, name


def test_it_shows_the_gpt3_seed_figure_does_not_follow_from_the_formula():
    # 000: "Across all attention matrices in GPT-3 (Q, K, V, O × 96 layers), LoRA with r = 8
    # trains about 4.7 million parameters", and its target table: Q 4.7M, QV 9.4M, QKVO 18.8M,
    # attention + FFN 37.7M. 2·d·r × matrices × layers gives 18.9M / 37.7M / 75.5M / 169.9M:
    # the seed's Q/QV/QKVO figures are what r = 2 would give.
    gpt3 = lora.GPT3_175B
    formula = {name: gpt3.lora_params(t, 8) for name, t in lora.TARGET_SETS.items()}
    assert formula == {"Q": 18_874_368, "QV": 37_748_736, "QKVO": 75_497_472, "QKVO+FFN": 169_869_312}
    assert formula["QKVO"] == 4 * 96 * 196_608  # the seed's own per-matrix 197K × 4 × 96
    for name in ("Q", "QV", "QKVO"):
        assert lora.SEED_GPT3_R8[name] != pytest.approx(formula[name], rel=0.05)
        assert lora.rank_for_count(gpt3, lora.TARGET_SETS[name], lora.SEED_GPT3_R8[name]) == pytest.approx(2, rel=0.01)


def test_it_shows_the_llama_printout_does_not_follow_from_the_formula():
    # 003: peft on LLaMA-2 7B, r=16, q,k,v,o,gate,up,down: "trainable params: 41,943,040".
    # 16 × (4·8192 + 3·15104) × 32 = 39,976,960.
    formula = lora.LLAMA_7B.lora_params(lora.TARGET_SETS["QKVO+FFN"], 16)
    assert formula == 39_976_960
    assert formula != lora.SEED_LLAMA_R16_ALL


def test_it_serves_every_count_for_every_rank(client):
    resp = client.get("/api/playgrounds/parameter-counter")
    assert resp.status_code == 200
    data = resp.json()
    assert data["ranks"] == list(range(1, 257))
    i, j = data["hidden_sizes"].index(4096), data["ranks"].index(8)
    assert data["per_matrix"]["lora"][i][j] == 65_536
    assert data["per_matrix"]["share"][i][j] == pytest.approx(0.003906, rel=1e-3)
    keys = [m["key"] for m in data["models"]]
    assert keys == ["minilm", "bert-base", "roberta-base", "llama-7b", "gpt3-175b"]
    assert data["base_model"] == "minilm"
    gpt3 = data["models"][-1]
    assert gpt3["counts"]["QKVO"][j] == 75_497_472
    assert set(gpt3["counts"]) == set(lora.TARGET_SETS)
    rows = {row["targets"]: row for row in data["notes"]["gpt3"]["rows"]}
    assert rows["QKVO"]["quoted_figure"] == 18.8e6 and rows["QKVO"]["formula"] == 75_497_472
    assert data["notes"]["llama"]["formula"] == 39_976_960


# --- P10 forward path ---------------------------------------------------------------------------


def test_it_computes_h_as_wx_plus_scaled_bax_and_as_the_merged_matrix():
    # 001 ch2 / cheat sheet: h = Wx + (α/r)BAx; merged W' = W + (α/r)BA gives the same h.
    ex = lora.forward_example(d=8, seed=3)
    for r in range(1, 9):
        A, B = ex.A[r - 1], ex.B[r - 1]
        assert A.shape == (r, 8) and B.shape == (8, r) and ex.Ax[r - 1].shape == (r,)
        for i, alpha in enumerate(lora.ALPHA_GRID):
            merged = (ex.W + alpha / r * B @ A) @ ex.x
            np.testing.assert_allclose(ex.h[r - 1, i], merged, atol=1e-12)
            assert ex.scale[r - 1, i] == alpha / r


def test_it_turns_the_adapter_off_at_alpha_zero_and_keeps_ranks_nested():
    ex = lora.forward_example(d=6, seed=1)
    np.testing.assert_array_equal(ex.h[:, 0], np.broadcast_to(ex.Wx, (6, 6)))
    np.testing.assert_array_equal(ex.A[4][:2], ex.A[1])
    np.testing.assert_array_equal(ex.B[4][:, :2], ex.B[1])


def test_it_counts_the_forward_example_like_any_matrix():
    # 2·d·r for the d×d example, as 001 counts 2 × 4096 × 8.
    assert lora_matrix_params(8, 8, 2) == 32


def test_it_serves_the_forward_path_for_every_rank_and_alpha(client):
    resp = client.get("/api/playgrounds/lora-forward", {"d": 8, "seed": 2})
    assert resp.status_code == 200
    data = resp.json()
    assert data["ranks"] == list(range(1, 9))
    assert np.array(data["h"]).shape == (8, len(lora.ALPHA_GRID), 8)
    assert np.array(data["A"][1]).shape == (2, 8) and np.array(data["B"][1]).shape == (8, 2)
    assert data["params_lora"][1] == 32 and data["params_full"] == 64
    ex = lora.forward_example(8, 2)
    np.testing.assert_allclose(data["h"][1][16], ex.h[1, 16], atol=1e-4)


@pytest.mark.parametrize(
    "query, phrase",
    [
        ({"d": 99}, "d must be between 4 and 16"),
        ({"seed": -1}, "seed must be between 0"),
        ({"d": "eight"}, "d"),
    ],
)
def test_it_answers_bad_forward_settings_with_400(client, query, phrase):
    resp = client.get("/api/playgrounds/lora-forward", query)
    assert resp.status_code == 400
    assert phrase in resp.json()["error"]


# --- P12 zero start -----------------------------------------------------------------------------


def test_it_starts_lora_at_exactly_zero_and_grows():
    # 001 ch4: "ΔW = 0 at the start, exactly ... then grows smoothly as gradients push B".
    target, runs = lora.zero_start(alpha=8, lr=0.01, seed=0)
    for _r, t in runs["alpha_over_r"]["lora"].items():
        assert t.norm[0] == 0.0 and np.all(t.delta[0] == 0.0)
        assert t.grad_A[0] == 0.0 and t.grad_B[0] > 0  # A's gradient has B in it; B's has A
        assert t.norm[1] > 0 and t.norm[-1] > t.norm[1]
        assert t.loss[-1] < t.loss[0] == pytest.approx(0.5)


def test_it_never_learns_when_both_start_at_zero():
    # 001 ch4 misconception: "If both were zero, the gradient to A would also be zero ... the
    # adapter would be stuck at zero forever."
    _, runs = lora.zero_start(alpha=8, lr=0.05, seed=4)
    for scaling in lora.SCALINGS:
        for t in runs[scaling]["both_zero"].values():
            assert np.all(t.norm == 0.0) and np.all(t.grad_A == 0) and np.all(t.grad_B == 0)
            assert np.all(t.loss == t.loss[0])


def test_it_starts_away_from_the_base_model_when_both_are_random():
    _, runs = lora.zero_start(alpha=8, lr=0.01, seed=0)
    assert all(t.norm[0] > 0 for t in runs["alpha_over_r"]["both_random"].values())


def test_it_keeps_the_first_update_comparable_across_ranks_with_alpha_over_r():
    # 001 ch4: α/r "keeps the magnitude of the update roughly stable across different ranks";
    # without the division by r the first steps' update grows with r.
    _, runs = lora.zero_start(alpha=8, lr=0.01, seed=0)
    step = 3
    scaled = [runs["alpha_over_r"]["lora"][r].norm[step] for r in lora.ZERO_RANKS]
    unscaled = [runs["alpha"]["lora"][r].norm[step] for r in lora.ZERO_RANKS]
    assert max(scaled) / min(scaled) < 2
    assert unscaled[-1] / unscaled[0] > 3 * max(scaled) / min(scaled)


def test_it_learns_the_target_only_with_enough_rank():
    # The target has rank 2: rank 1 plateaus, rank ≥ 2 fits it.
    _, runs = lora.zero_start(alpha=8, lr=0.02, seed=0)
    lora_runs = runs["alpha_over_r"]["lora"]
    assert lora_runs[1].loss[-1] > 10 * lora_runs[2].loss[-1]


def test_it_serves_every_trajectory(client):
    resp = client.get("/api/playgrounds/zero-start", {"alpha": 16, "lr": 0.02, "seed": 1})
    assert resp.status_code == 200
    data = resp.json()
    assert data["settings"] == {"alpha": 16, "lr": 0.02, "seed": 1}
    steps = data["steps"] + 1
    t = data["trajectories"]["alpha_over_r"]["lora"]["4"]
    assert len(t["norm"]) == steps and t["norm"][0] == 0
    assert np.array(t["delta"]).shape == (steps, data["d"], data["d"])
    assert data["trajectories"]["alpha"]["lora"]["4"]["delta"] is None
    assert set(data["trajectories"]["alpha"]["both_zero"]["8"]["norm"]) == {0}
    assert data["scale"]["alpha_over_r"] == [16 / r for r in data["ranks"]]


@pytest.mark.parametrize(
    "query, phrase",
    [
        ({"alpha": 0}, "alpha must be between 1 and 64"),
        ({"lr": 5}, "lr must be between"),
        ({"seed": -3}, "seed must be between 0"),
    ],
)
def test_it_answers_bad_zero_start_settings_with_400(client, query, phrase):
    resp = client.get("/api/playgrounds/zero-start", query)
    assert resp.status_code == 400
    assert phrase in resp.json()["error"]
