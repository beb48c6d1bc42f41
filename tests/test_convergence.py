"""hccmeta.models.convergence: R-hat, bulk and tail ESS of all variables at once, equal to
the last bit to arviz-stats' own (one variable at a time)."""

from __future__ import annotations

import numpy as np
import pytest

from hccmeta.models.convergence import rank_diagnostics

azs = pytest.importorskip("arviz_stats")


def _arviz(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kw = {"chain_axis": 0, "draw_axis": 1}
    return (
        np.asarray(azs.rhat(values, **kw)),
        np.asarray(azs.ess(values, method="bulk", **kw)),
        np.asarray(azs.ess(values, method="tail", prob=(0.05, 0.95), **kw)),
    )


def _ar1(rng: np.random.Generator, chains: int, draws: int, n_var: int, phi: float) -> np.ndarray:
    """AR(1) chains with a small chain-specific offset: (chain, draw, variable)."""
    x = np.zeros((chains, draws, n_var))
    e = rng.normal(size=(chains, draws, n_var))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x + 0.1 * rng.normal(size=(chains, 1, n_var))


def _assert_same(values: np.ndarray) -> None:
    for name, ref, got in zip(
        ("rhat", "bulk", "tail"), _arviz(values), rank_diagnostics(values), strict=True
    ):
        assert got.shape == ref.shape, name
        # equal to the last bit, NaN where arviz-stats gives NaN
        np.testing.assert_array_equal(got, ref, err_msg=name, strict=True)


@pytest.mark.parametrize(
    ("chains", "draws", "n_var"),
    [(4, 1000, 7), (4, 500, 5), (4, 2000, 3), (2, 9, 4), (3, 101, 5), (8, 64, 2), (4, 1001, 3)],
)
@pytest.mark.parametrize("phi", [0.0, 0.6, 0.97, -0.4])
def test_equal_to_arviz_stats(chains: int, draws: int, n_var: int, phi: float) -> None:
    rng = np.random.default_rng([chains, draws, n_var, int(phi * 100) + 100])
    _assert_same(_ar1(rng, chains, draws, n_var, phi))


def test_ties_indicators_constants_and_stuck_chains() -> None:
    rng = np.random.default_rng(7)
    values = _ar1(rng, 4, 1000, 6, 0.3)
    values[..., 1] = np.round(values[..., 1])  # heavy ties (average ranks)
    values[..., 2] = (values[..., 2] > 1.5).astype(float)  # an indicator
    values[..., 3] = 1.0  # constant: ESS is the number of draws, R-hat NaN
    values[..., 4] += np.arange(4)[:, None]  # chains apart: R-hat far above 1
    values[0, :, 5] = values[0, 0, 5]  # one chain stuck
    with np.errstate(invalid="ignore", divide="ignore"):
        _assert_same(values)
    rhat, bulk, _ = rank_diagnostics(values)
    assert rhat[4] > 1.1 and bulk[3] == 4000.0


def test_non_finite_and_short_chains_go_to_arviz_stats() -> None:
    rng = np.random.default_rng(3)
    values = _ar1(rng, 4, 200, 3, 0.5)
    values[2, 17, 1] = np.nan
    values[1, 3, 2] = np.inf
    with np.errstate(invalid="ignore"):
        _assert_same(values)
    rhat, bulk, tail = rank_diagnostics(values)
    assert np.isnan(rhat[1]) and np.isnan(bulk[1]) and np.isnan(tail[1])
    single = _ar1(rng, 1, 50, 2, 0.2)
    _assert_same(single)
    assert np.isnan(rank_diagnostics(single)[0]).all()  # R-hat needs 2 chains
    assert all(a.shape == (0,) for a in rank_diagnostics(np.zeros((4, 10, 0))))
    with pytest.raises(ValueError, match="chain, draw, variable"):
        rank_diagnostics(np.zeros((4, 10)))


@pytest.mark.sampling
def test_equal_on_a_real_trace_and_in_diagnose() -> None:
    import hccmeta as hm
    from hccmeta.models.mcmc import SamplerSettings, diagnose

    res = hm.pool(
        yi=[0.1, 0.5, -0.3, 0.8], sei=[0.3, 0.4, 0.35, 0.5], measure="hr", method="mcmc",
        seed=5,
        settings=SamplerSettings(draws=300, tune=300),
    )  # fmt: skip
    tree = res.datatree
    post = tree["posterior"].to_dataset()
    columns = [
        np.asarray(post[v].transpose("chain", "draw", ...).values, dtype=float).reshape(
            post.sizes["chain"], post.sizes["draw"], -1
        )
        for v in post.data_vars
    ]
    values = np.concatenate(columns, axis=2)
    _assert_same(values)
    rhat, bulk, tail = _arviz(values)
    diag = diagnose(tree, SamplerSettings(draws=300, tune=300))
    assert diag.max_rhat == float(np.max(rhat))
    assert diag.min_ess_bulk == float(np.min(bulk))
    assert diag.min_ess_tail == float(np.min(tail))
