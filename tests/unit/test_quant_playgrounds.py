"""The "quant" playgrounds' math and endpoints: P14 (simulations/quantization.py), P8
(simulations/adapter_block.py) and P16 (simulations/lowrank_lab.py)."""

import numpy as np
import pytest

from simulations import adapter_block, lowrank_lab
from simulations import quantization as quant
from simulations.params import adapter_params

# --- P14 NF4 and double quantisation --------------------------------------------------------


def test_it_reproduces_the_bitsandbytes_nf4_table():
    # The lab computes NF4 itself (normal quantiles, Dettmers et al. 2023); bitsandbytes ships
    # the table the real QLoRA runs use. They must agree.
    from bitsandbytes import functional

    reference = functional.get_4bit_type("nf4", device="cpu").numpy()
    np.testing.assert_allclose(quant.nf4_levels(), reference, atol=1e-6)


def test_it_builds_nf4_with_8_positive_7_negative_levels_and_an_exact_zero():
    levels = quant.nf4_levels()
    assert len(levels) == 16 and np.all(np.diff(levels) > 0)
    assert (levels > 0).sum() == 8 and (levels < 0).sum() == 7 and 0.0 in levels
    assert levels[0] == -1.0 and levels[-1] == 1.0
    assert quant.NF4_OFFSET == pytest.approx(0.9677083, abs=1e-7)


def test_it_spaces_int4_evenly_with_fifteen_absmax_levels():
    levels = quant.int4_levels()
    assert len(levels) == 15 and np.allclose(np.diff(levels), 1 / 7)


def test_it_rounds_to_the_nearest_level_and_keeps_the_block_extreme_exact():
    w = np.array([0.9, -0.1, 0.02, -2.0])
    out = quant.quantize_blockwise(w, quant.int4_levels(), 4)
    assert out[3] == -2.0  # the absmax maps to −1 exactly
    np.testing.assert_allclose(out[:3], np.round(7 * w[:3] / 2) * 2 / 7)


def test_it_gives_nf4_less_error_than_int4_on_gaussian_weights():
    # Seed 003: "NF4 produces lower quantization error than standard int4 ... for neural
    # network weights". True at every block size from 32 up (at 16 the two are close).
    study = quant.error_study(seed=0)
    for i in range(len(quant.SAMPLE_SIZES)):
        assert np.all(study.mse["nf4"][i, 1:] < study.mse["int4"][i, 1:])
    b64 = quant.BLOCKSIZES.index(64)
    assert study.mse["nf4"][-1, b64] < 0.8 * study.mse["int4"][-1, b64]


def test_it_loses_more_with_bigger_blocks():
    study = quant.error_study(seed=0)
    for c in quant.CODES:
        assert np.all(np.diff(study.mse[c][-1]) > 0)


def test_it_barely_changes_the_error_with_double_quantisation():
    study = quant.error_study(seed=0)
    for c in quant.CODES:
        np.testing.assert_allclose(study.mse_dq[c], study.mse[c], rtol=0.02)


def test_it_normalises_the_histograms():
    study = quant.error_study(seed=0)
    np.testing.assert_allclose(study.normalized_hist.sum(axis=-1), 1.0)
    for c in quant.CODES:
        np.testing.assert_allclose(study.error_hist[c].sum(axis=-1), 1.0)


def test_it_costs_half_a_bit_of_fp32_scales_and_0_127_with_double_quantisation():
    # Seed 003: "reducing overhead from 0.5 bits per parameter to approximately 0.127";
    # seed 004: double quantisation saves "~0.4 bits per parameter" (0.373).
    assert quant.scale_overhead_bits(64) == 0.5
    assert quant.scale_overhead_bits(64, double_quant=True) == pytest.approx(8 / 64 + 32 / (64 * 256))
    assert round(quant.scale_overhead_bits(64, double_quant=True), 3) == 0.127
    assert quant.bits_per_param(64) == 4.5
    assert round(quant.scale_overhead_bits(64) - quant.scale_overhead_bits(64, True), 1) == 0.4


def test_it_counts_110m_scales_of_440_mb_for_7b_at_block_64():
    # Seed 003: "A 7B model with block size 64 needs about 110M scaling constants, each stored
    # in fp32, consuming 440 MB" (109.4M and 437.5 MB).
    n = quant.scale_constants(7e9, 64)
    assert n == 109_375_000
    assert quant.weight_bytes(n, 32) / 1e6 == pytest.approx(440, rel=0.01)


def test_it_puts_65b_at_130_gb_in_fp16_and_33_gb_in_nf4():
    # Seeds 001 and 003: 7B fp16 = 14 GB, 65B fp16 = 130 GB, "about 33 GB" in 4 bits, which
    # fits a single 48 GB GPU (seeds 000, 001, 004).
    table = quant.memory_table()
    b64 = quant.BLOCKSIZES.index(64)
    assert table["7B"]["fp16_gb"] == 14 and table["65B"]["fp16_gb"] == 130
    assert table["65B"]["nf4_dq_gb"][b64] == pytest.approx(33.5, abs=0.05)
    assert table["65B"]["nf4_gb"][b64] == pytest.approx(36.6, abs=0.05)
    assert table["65B"]["nf4_dq_gb"][b64] < 48


def test_it_shows_that_seed_000s_16_gb_for_a_4bit_70b_model_does_not_follow():
    # Seed 000: "Load 65B model in 4-bit (~16 GB)" for meta-llama/Llama-2-70b-hf: 4 bits × 70B
    # weights are 35 GB before any scales, so the page flags the figure.
    assert quant.weight_bytes(70e9, 4) / 1e9 == 35.0


def test_it_rejects_a_bad_seed_and_a_block_that_does_not_divide():
    with pytest.raises(ValueError, match="seed must be between 0"):
        quant.gaussian_weights(10, -1)
    with pytest.raises(ValueError, match="multiple of the block size"):
        quant.absmax_per_block(np.ones(100), 64)
    with pytest.raises(ValueError, match="code must be one of"):
        quant.levels_of("fp4")


def test_it_serves_the_qlora_playground(client):
    resp = client.get("/api/playgrounds/qlora", {"seed": 3})
    assert resp.status_code == 200
    data = resp.json()
    nb, ns = len(data["blocksizes"]), len(data["sample_sizes"])
    assert np.array(data["error"]["mse"]["nf4"]).shape == (ns, nb)
    assert np.array(data["error"]["error_hist"]["int4"]).shape[:2] == (ns, nb)
    assert len(data["codes"]["nf4"]["levels"]) == 16
    b64 = data["blocksizes"].index(64)
    assert data["bits"]["overhead"][b64] == 0.5
    assert data["bits"]["overhead_dq"][b64] == pytest.approx(0.127, abs=5e-4)
    assert data["memory"]["fp16_gb"][data["memory"]["models"].index("65B")] == 130


def test_it_answers_a_bad_qlora_seed_with_400(client):
    resp = client.get("/api/playgrounds/qlora", {"seed": -5})
    assert resp.status_code == 400
    assert "seed must be between 0" in resp.json()["error"]


# --- P8 Adapter block ---------------------------------------------------------------------------


def test_it_counts_131072_weights_for_m_64_on_d_1024():
    # Seed 000: "With d = 1024 and m = 64, each adapter has 2 × 1024 × 64 = 131,072 parameters."
    assert adapter_block.adapter_weights(1024, 64) == 131_072
    # With its biases (params.adapter_params): 2dm + m + d.
    assert adapter_params(1024, 64) == 131_072 + 64 + 1024 == 132_160


def test_it_puts_6_3m_adapter_weights_at_1_8_percent_of_bert_large():
    # Seed 000: two adapters per layer × 24 layers = ~6.3M, 1.8% of a 340M BERT-large.
    share = adapter_block.model_share("BERT-large", 1024, 24, 340e6, 64)
    assert share.weights == 6_291_456
    assert round(share.weights / 1e6, 1) == 6.3
    assert round(100 * share.share, 1) == 1.9  # 1.85%: the seed truncates to 1.8
    # ~25 MB per task in fp32 (seed 000's storage table).
    assert round(share.weights * 4 / 1e6) == 25


def test_it_shows_seed_000s_table_assumes_one_adapter_per_layer():
    # Seed 000's table: m = 8 → 0.11%, 32 → 0.46%, 64 → 0.93%, 256 → 3.7% of BERT-large (340M).
    # Those are one adapter per layer; its own text (two per layer) doubles them.
    for m, pct in [(8, 0.11), (32, 0.46), (64, 0.93), (256, 3.7)]:
        one_per_layer = 24 * adapter_block.adapter_weights(1024, m) / 340e6
        assert 100 * one_per_layer == pytest.approx(pct, abs=0.01)  # the seed truncates
        two = adapter_block.model_share("BERT-large", 1024, 24, 340e6, m).share
        assert two == pytest.approx(2 * one_per_layer)


def test_it_counts_bert_from_its_configuration():
    # BERT-base ~110M and BERT-large ~340M (Devlin et al.); the configurations give these.
    assert adapter_block.bert_total(adapter_block.BERT_BASE) == 109_482_240
    assert adapter_block.bert_total(adapter_block.BERT_LARGE) == 335_141_888


def test_it_breaks_one_layer_into_4d2_8d2_and_two_2dm_adapters():
    # Seed 000's layer table: attention 4d², adapters 2dm each, feed-forward 8d², norms 4d.
    parts = adapter_block.layer_breakdown(1024, 64)
    assert parts == {
        "attention": 4 * 1024**2,
        "adapter_1": 131_072,
        "feed_forward": 8 * 1024**2,
        "adapter_2": 131_072,
        "layer_norms": 4096,
    }


def test_it_refuses_a_bottleneck_wider_than_the_hidden_state():
    with pytest.raises(ValueError, match="between 1 and d = 256"):
        adapter_block.model_share("x", 256, 2, 1e6, 512)


def test_it_serves_the_adapter_grid_with_the_lab_model(client):
    resp = client.get("/api/playgrounds/adapter-block")
    assert resp.status_code == 200
    data = resp.json()
    d, m = data["hidden_sizes"].index(1024), data["bottlenecks"].index(64)
    assert data["weights"][d][m] == 131_072
    assert data["with_biases"][d][m] == 132_160
    assert data["ratio"][d][m] == 0.0625
    assert data["weights"][data["hidden_sizes"].index(256)][data["bottlenecks"].index(512)] is None
    mini = data["models"][0]
    assert mini["hidden"] == 384 and mini["layers"] == 6 and mini["adapters"] == 12
    assert mini["weights"][m] == 12 * 2 * 384 * 64


def test_it_answers_a_bottleneck_off_the_slider_with_400(client):
    resp = client.get("/api/playgrounds/adapter-block", {"bottleneck": 3})
    assert resp.status_code == 400
    assert "bottleneck must be one of" in resp.json()["error"]


# --- P16 Low-rank lab ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 8])
def test_it_plateaus_at_the_noise_floor_from_the_true_rank_with_plenty_of_data(k):
    # Seed 001 ch. 8: "The error falls steeply until r reaches 3, then flattens — once your rank
    # matches the update's intrinsic rank, you've captured it."
    res = lowrank_lab.run_lab(k, 0.3, seed=2)
    big = -1  # the largest sample size
    held = res.heldout_mse[big]
    assert held[k] < 1.1 * res.noise_floor  # at the floor from r = k
    # The last signal direction removes far more error than the first noise direction after it.
    assert held[k - 1] - held[k] > 5 * abs(held[k] - held[k + 1])
    assert np.all(held[k:] < 1.15 * res.noise_floor)  # ... and nothing after it does
    assert res.best_rank[big] in (k, k + 1, k + 2)


def test_it_cannot_keep_up_when_the_true_rank_exceeds_r():
    # Seed 001 ch. 8: raise the true rank to 8 and "a LoRA rank of 3 can no longer keep up".
    res = lowrank_lab.run_lab(8, 0.1, seed=2)
    assert res.heldout_mse[-1, 3] > 10 * res.heldout_mse[-1, 8]


def test_it_is_exact_at_the_true_rank_without_noise():
    res = lowrank_lab.run_lab(3, 0.0, seed=1)
    assert np.all(res.update_error[:, 3] < 1e-9)
    assert np.all(res.update_error[:, 2] > 0.1)


def test_it_overfits_past_the_true_rank_with_little_data():
    # Held-out error rises again past k when n is small; training error only falls.
    res = lowrank_lab.run_lab(3, 0.5, seed=1)
    small = 0
    held, train = res.heldout_mse[small], res.train_mse[small]
    assert held[-1] > 1.5 * held[3]
    assert np.all(np.diff(train) <= 1e-12)
    # More data, less overfitting at full rank.
    assert np.all(np.diff(res.heldout_mse[:, -1]) < 0)


def test_it_fits_the_best_rank_r_update_on_the_training_set():
    # Reduced-rank regression beats any other rank-r update on the examples it saw, e.g. the
    # truncated SVD of the least-squares solution itself.
    delta = lowrank_lab.true_update(4, seed=5)
    x, y = lowrank_lab.training_data(60, 0.4, delta, seed=5)
    fits = lowrank_lab.reduced_rank_fits(x, y)
    ols = fits[-1]
    u, s, vt = np.linalg.svd(ols)
    for r in range(1, 8):
        assert np.linalg.matrix_rank(fits[r]) == r
        svd_r = (u[:, :r] * s[:r]) @ vt[:r]
        assert np.sum((y - x @ fits[r]) ** 2) <= np.sum((y - x @ svd_r) ** 2) + 1e-9


def test_it_costs_2d_parameters_per_rank():
    # Seed 001 ch. 8: "Every increment of r adds 2d parameters".
    res = lowrank_lab.run_lab(3, 0.3, seed=1)
    assert np.all(np.diff(res.params) == 2 * lowrank_lab.SIZE)


def test_it_scales_the_signal_to_unit_power():
    delta = lowrank_lab.true_update(3, seed=0)
    assert np.linalg.norm(delta) ** 2 == pytest.approx(lowrank_lab.SIZE)
    assert np.linalg.matrix_rank(delta) == 3


@pytest.mark.parametrize(
    "bad, phrase",
    [
        ({"true_rank": 0}, "true_rank must be between 1 and 8"),
        ({"true_rank": 9}, "true_rank must be between 1 and 8"),
        ({"noise": -0.1}, "noise must be between 0 and 1"),
        ({"noise": float("nan")}, "noise must be between 0 and 1"),
        ({"seed": -1}, "seed must be between 0"),
    ],
)
def test_it_rejects_bad_lab_settings(bad, phrase):
    settings = {"true_rank": 3, "noise": 0.3, "seed": 1, **bad}
    with pytest.raises(ValueError, match=phrase):
        lowrank_lab.run_lab(**settings)


def test_it_serves_every_rank_for_every_sample_size(client):
    resp = client.get("/api/playgrounds/low-rank-lab", {"true_rank": 2, "noise": 0.2, "seed": 4})
    assert resp.status_code == 200
    data = resp.json()
    n_sizes, n_ranks, d = len(data["sample_sizes"]), len(data["ranks"]), data["size"]
    assert np.array(data["fits"]).shape == (n_sizes, n_ranks, d, d)
    assert np.array(data["heldout_mse"]).shape == (n_sizes, n_ranks)
    assert data["noise_floor"] == pytest.approx(0.04)
    assert data["params"][8] == 8 * 2 * d


def test_the_api_rounds_every_number_to_significant_digits_and_keeps_the_shape():
    from simulations.rounding import significant

    a = np.array([[[1234.5678, -0.000123456], [0.0, 2.5e-30]], [[9.996, 1.0], [-7.0, 0.1 + 0.2]]])
    assert significant(a, 3) == [[[1230.0, -0.000123], [0.0, 2.5e-30]], [[10.0, 1.0], [-7.0, 0.3]]]
    assert significant(np.pi) == 3.142 and significant([]) == []
    assert significant([1, 22222]) == [1.0, 22220.0] and significant(7) == 7.0


def test_it_answers_a_bad_true_rank_with_400(client):
    resp = client.get("/api/playgrounds/low-rank-lab", {"true_rank": 12})
    assert resp.status_code == 400
    assert "true_rank must be between 1 and 8" in resp.json()["error"]
