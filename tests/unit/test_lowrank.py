"""P9 Low-rank approximation: the math in simulations/lowrank.py and its JSON endpoint."""

import numpy as np
import pytest

from simulations import lowrank
from simulations.lowrank import make_matrix, svd_reconstructions

URL = "/api/playgrounds/low-rank"


def settings(**overrides):
    base = {"kind": "lowrank", "size": 24, "seed": 3, "true_rank": 3, "noise": 0.05}
    return {**base, **overrides}


@pytest.mark.parametrize("kind", sorted(lowrank.KINDS))
def test_it_matches_eckart_young_error(kind):
    rec = svd_reconstructions(make_matrix(**settings(kind=kind)))
    matrix = rec.recons[-1]
    s2 = rec.singular_values**2
    for r in range(len(s2) + 1):
        direct = np.linalg.norm(matrix - rec.recons[r]) / np.linalg.norm(matrix)
        assert rec.errors[r] ** 2 == pytest.approx(s2[r:].sum() / s2.sum(), abs=1e-12)
        assert rec.errors[r] == pytest.approx(direct, abs=1e-9)
        assert rec.errors[r] ** 2 + rec.energy[r] == pytest.approx(1.0)


def test_it_beats_other_rank_r_matrices():
    # Eckart–Young says no rank-r matrix is closer; try random ones and a column-truncated one.
    matrix = make_matrix(**settings(kind="smooth"))
    rec = svd_reconstructions(matrix)
    rng = np.random.default_rng(0)
    r = 4
    best = np.linalg.norm(matrix - rec.recons[r])
    for _ in range(20):
        other = rec.recons[r] + 0.01 * rng.standard_normal((24, r)) @ rng.standard_normal((r, 24))
        assert np.linalg.norm(matrix - other) >= best
    keep_columns = matrix.copy()
    keep_columns[:, r:] = 0
    assert np.linalg.norm(matrix - keep_columns) >= best


def test_it_reconstructs_with_exactly_rank_r():
    rec = svd_reconstructions(make_matrix(**settings(kind="random", size=16)))
    for r in range(17):
        assert np.linalg.matrix_rank(rec.recons[r]) == r


@pytest.mark.parametrize("kind", sorted(lowrank.KINDS))
def test_it_never_gets_worse_with_more_rank(kind):
    rec = svd_reconstructions(make_matrix(**settings(kind=kind)))
    assert rec.errors[0] == 1.0
    assert np.all(np.diff(rec.errors) <= 0)
    assert rec.errors[-1] == 0.0
    np.testing.assert_allclose(rec.recons[-1], make_matrix(**settings(kind=kind)), atol=1e-12)


@pytest.mark.parametrize("true_rank", [1, 3, 8])
@pytest.mark.parametrize("noise", [0.02, 0.1])
def test_it_plateaus_near_the_noise_level_at_the_true_rank(true_rank, noise):
    rec = svd_reconstructions(make_matrix(**settings(size=32, true_rank=true_rank, noise=noise)))
    k = true_rank
    # At r = k only noise is left, less the part of it that lies in the kept directions.
    assert 0.6 * noise < rec.errors[k] <= noise
    # The last signal direction removes far more error than the first noise direction after it:
    # a steep drop, then a plateau.
    last_signal_drop = rec.errors[k - 1] - rec.errors[k]
    first_noise_drop = rec.errors[k] - rec.errors[k + 1]
    assert last_signal_drop > 5 * first_noise_drop
    assert rec.errors[k - 1] > 1.5 * rec.errors[k]


def test_it_is_exact_at_the_true_rank_without_noise():
    rec = svd_reconstructions(make_matrix(**settings(true_rank=5, noise=0.0)))
    assert rec.errors[5] < 1e-7
    assert rec.errors[4] > 0.1


def test_it_counts_factor_parameters_as_r_times_m_plus_n():
    rec = svd_reconstructions(np.arange(1.0, 1 + 6 * 10).reshape(6, 10))
    assert rec.params_full == 60
    assert rec.params_factors.tolist() == [r * 16 for r in range(7)]
    assert rec.params_ratio[3] == pytest.approx(48 / 60)
    # 3·16 = 48 < 60 ≤ 4·16 = 64: rank 4 is the first whose factors cost the full matrix.
    assert rec.break_even_rank == 4


def test_it_gives_the_same_matrix_for_the_same_seed():
    for kind in lowrank.KINDS:
        a = make_matrix(**settings(kind=kind, seed=11))
        np.testing.assert_array_equal(a, make_matrix(**settings(kind=kind, seed=11)))
        assert not np.array_equal(a, make_matrix(**settings(kind=kind, seed=12)))


def test_it_keeps_the_signal_when_only_the_noise_changes():
    quiet = make_matrix(**settings(noise=0.0))
    noisy = make_matrix(**settings(noise=0.2))
    # Rank-3 parts agree closely: the noise slider adds noise, it does not draw a new matrix.
    q, n = svd_reconstructions(quiet).recons[3], svd_reconstructions(noisy).recons[3]
    assert np.linalg.norm(q / np.abs(q).max() - n / np.abs(n).max()) / np.linalg.norm(q) < 0.3


def test_it_scales_every_kind_to_a_largest_entry_of_one():
    for kind in lowrank.KINDS:
        assert np.abs(make_matrix(**settings(kind=kind))).max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad, phrase",
    [
        ({"kind": "diagonal"}, "kind must be one of"),
        ({"size": 3}, "size must be between 4 and 64"),
        ({"size": 65}, "size must be between 4 and 64"),
        ({"true_rank": 0}, "true_rank must be between 1"),
        ({"true_rank": 25}, "true_rank must be between 1"),
        ({"noise": -0.1}, "noise must be between 0"),
        ({"noise": float("nan")}, "noise must be between 0"),
        ({"seed": -1}, "seed must be between 0"),
    ],
)
def test_it_rejects_bad_settings_with_a_readable_message(bad, phrase):
    with pytest.raises(ValueError, match=phrase):
        make_matrix(**settings(**bad))


def test_it_rejects_matrices_it_cannot_approximate():
    with pytest.raises(ValueError, match="all zeros"):
        svd_reconstructions(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="2-D"):
        svd_reconstructions(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        svd_reconstructions(np.array([[1.0, np.nan], [0.0, 1.0]]))


# The endpoint: needs the router mounted at /api/playgrounds in peftlab/api/lab.py.


def test_it_serves_every_reconstruction_as_json(client):
    resp = client.get(URL, {"kind": "lowrank", "size": 8, "seed": 2, "true_rank": 2, "noise": 0.1})
    assert resp.status_code == 200
    data = resp.json()
    assert data["settings"] == {"kind": "lowrank", "size": 8, "seed": 2, "true_rank": 2, "noise": 0.1}
    assert data["shape"] == [8, 8]
    assert np.array(data["matrix"]).shape == (8, 8)
    assert np.array(data["reconstructions"]).shape == (9, 8, 8)
    for key in ("errors", "energy", "params_factors", "params_ratio"):
        assert len(data[key]) == 9
    assert len(data["singular_values"]) == 8
    assert data["params_factors"][3] == 3 * 16 and data["params_full"] == 64
    rec = svd_reconstructions(make_matrix("lowrank", 8, 2, 2, 0.1))
    np.testing.assert_allclose(data["errors"], rec.errors, rtol=1e-3)
    np.testing.assert_allclose(data["reconstructions"][2], rec.recons[2], atol=1e-4)
    assert data["reconstructions"][8] == data["matrix"]


def test_it_uses_defaults_when_no_settings_are_given(client):
    resp = client.get(URL)
    assert resp.status_code == 200
    assert set(resp.json()["settings"]) == {"kind", "size", "seed", "true_rank", "noise"}


@pytest.mark.parametrize(
    "query, phrase",
    [
        ({"size": 100}, "size must be between 4 and 64"),
        ({"kind": "diagonal"}, "kind must be one of"),
        ({"size": "big"}, "size"),
    ],
)
def test_it_answers_bad_settings_with_400_and_a_message(client, query, phrase):
    resp = client.get(URL, query)
    assert resp.status_code == 400
    assert phrase in resp.json()["error"]
