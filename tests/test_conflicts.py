"""Conflict diagnostics: the leave-one-study-out predictive p (Presanis et al. 2013).

Reference: for the normal-normal model with a fixed tau and mu ~ Normal(m0, v0), the
predictive distribution of study 1's estimate given study 2 alone is normal in closed
form: mu | y2 ~ N(M, V) with 1 / V = 1 / v0 + 1 / (s2^2 + tau^2) and
M = V (m0 / v0 + y2 / (s2^2 + tau^2)); y1_rep ~ N(M, V + tau^2 + s1^2); the two-sided
p is 2 Phi(-|y1 - M| / sqrt(V + tau^2 + s1^2)).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

import hccmeta as hm
from hccmeta import priors as pr
from hccmeta.cli import main
from hccmeta.errors import InputError
from hccmeta.models.conflict import loo_conflict_p

# y = (0.2, -0.5), s = (0.3, 0.4), mu ~ N(0, 1), tau = 0 (fixed effect), study 1 left out:
#   1/V = 1 + 1/0.16 = 7.25, V = 0.137931, M = 0.137931 x (-0.5 / 0.16) = -0.431034
#   sd = sqrt(0.137931 + 0.09) = 0.477421, z = (0.2 + 0.431034) / 0.477421 = 1.321756
#   p = 2 Phi(-1.321756) = 0.186249
# study 2 left out: 1/V = 1 + 1/0.09 = 12.111111, V = 0.082569, M = 0.183486
#   sd = sqrt(0.082569 + 0.16) = 0.492513, z = (-0.5 - 0.183486) / 0.492513 = -1.387752
#   p = 0.165212
Y, S = [0.2, -0.5], [0.3, 0.4]


def _closed_form(y1: float, s1: float, y2: float, s2: float, tau: float) -> float:
    v = 1.0 / (1.0 + 1.0 / (s2**2 + tau**2))
    m = v * (y2 / (s2**2 + tau**2))
    return float(2 * stats.norm.sf(abs(y1 - m) / math.sqrt(v + tau**2 + s1**2)))


def test_k2_fixed_effect_by_hand() -> None:
    p = loo_conflict_p(Y, S, prior_mu=pr.Normal(0, 1), prior_tau=None)
    assert p == pytest.approx([0.186249, 0.165212], abs=2e-6)
    assert p[0] == pytest.approx(_closed_form(0.2, 0.3, -0.5, 0.4, 0.0), rel=1e-9)


def test_k2_fixed_tau_matches_the_closed_form() -> None:
    # tau pinned to [0.3, 0.30001] by a narrow Uniform prior: the exact engine's mixture
    # over tau collapses to the closed form at tau = 0.300005 (to ~1e-6)
    p = loo_conflict_p(Y, S, prior_mu=pr.Normal(0, 1), prior_tau=pr.Uniform(0.3, 0.30001))
    assert p[0] == pytest.approx(_closed_form(0.2, 0.3, -0.5, 0.4, 0.300005), abs=1e-6)
    assert p[1] == pytest.approx(_closed_form(-0.5, 0.4, 0.2, 0.3, 0.300005), abs=1e-6)
    # heterogeneity widens the predictive: less conflict than with tau = 0
    assert (p > loo_conflict_p(Y, S, prior_mu=pr.Normal(0, 1), prior_tau=None)).all()


def test_one_study_has_nothing_to_predict_from() -> None:
    p = loo_conflict_p([0.3], [0.2], prior_mu=pr.Normal(0, 1), prior_tau=pr.HalfNormal(0.5))
    assert np.isnan(p).all()
    # two rows of the same study: both left out together, nothing left
    p2 = loo_conflict_p(
        [0.3, 0.1], [0.2, 0.3], prior_mu=pr.Normal(0, 1), prior_tau=None, study=["a", "a"]
    )
    assert np.isnan(p2).all()


def test_rows_of_one_study_are_left_out_together() -> None:
    # study a has two rows; leaving a out leaves only study b to predict both
    p = loo_conflict_p(
        [0.2, 0.25, -0.5], [0.3, 0.35, 0.4], prior_mu=pr.Normal(0, 1), prior_tau=None,
        study=["a", "a", "b"],
    )  # fmt: skip
    assert p[0] == pytest.approx(_closed_form(0.2, 0.3, -0.5, 0.4, 0.0), rel=1e-9)
    assert p[1] == pytest.approx(_closed_form(0.25, 0.35, -0.5, 0.4, 0.0), rel=1e-9)


def test_a_far_study_conflicts() -> None:
    y = [0.0, 0.05, -0.05, 0.02, 2.5]
    s = [0.1] * 5
    p = loo_conflict_p(y, s, prior_mu=pr.Normal(0, 1), prior_tau=pr.HalfNormal(0.1))
    assert p[-1] < 0.001 and (p[:-1] > 0.05).all()


def test_bad_input() -> None:
    with pytest.raises(InputError):
        loo_conflict_p([0.1, 0.2], [0.1], prior_mu=pr.Normal(0, 1), prior_tau=None)
    with pytest.raises(InputError):
        loo_conflict_p([0.1, 0.2], [0.1, 0.0], prior_mu=pr.Normal(0, 1), prior_tau=None)


def test_analysis_conflicts_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    ev = hm.load_studies()
    res = hm.run_analysis("os_tace_plus_sorafenib_vs_sorafenib", ev)
    table = res.conflicts
    assert list(table.columns) == ["study", "record", "statistic", "p", "method"]
    assert set(table["study"]) == set(res.effects["study"])
    assert (table["method"] == "loo_predictive_exact").all()
    # the same numbers as the model function with the analysis's priors
    fit = res.fits["effect"]
    expect = loo_conflict_p(
        res.effects["yi"], res.effects["sei"], prior_mu=fit.prior_mu, prior_tau=fit.prior_tau
    )
    assert table["p"].to_numpy() == pytest.approx(expect)
    assert main(["run", "os_tace_plus_sorafenib_vs_sorafenib", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["study"] for c in out["conflicts"]] == table["study"].tolist()
    assert {"study", "record", "statistic", "p"} <= set(out["conflicts"][0])


def test_single_study_analysis_reports_null(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "pfs_6m_per_regimen", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["conflicts"] and all(c["p"] is None for c in out["conflicts"])
    assert all(c["method"] == "no_other_study" for c in out["conflicts"])


def test_mcmc_models_use_the_normal_approximation_per_estimand() -> None:
    """The proportions model's statistics: the n = 34 study's sorafenib arm (0 of 12
    responses at 3 months) and Terashima et al.'s 2.5% of 79 stand for one regimen and
    are compared with each other (their assessment times differ, which the model pools),
    with the default priors of a logit proportion; the combination arm (one study) has
    no other study."""
    import pandas as pd

    from hccmeta.analyses.registry import load_registry
    from hccmeta.analyses.run import AnalysisResult, Variation, default_priors
    from hccmeta.analyses.take import selectors, take_roles
    from hccmeta.effects import derive_effects

    ev = hm.load_studies()
    definition = load_registry(ev.data_dir).get("objective_response")
    assert definition.regimens is not None
    roles = [(r, selectors(g.select)) for r, g in definition.regimens.items()]
    rows = take_roles(derive_effects(ev).effects, roles, Variation())
    res = AnalysisResult(definition, "ok", "", rows, pd.DataFrame())
    table = res.conflicts.set_index("study")
    sor = rows[rows["role"] == "sorafenib"]
    mu, tau = default_priors("logit_p")
    expect = loo_conflict_p(sor["yi"], sor["sei"], prior_mu=mu, prior_tau=tau)
    got = res.conflicts[res.conflicts["method"] == "loo_predictive_normal_approx"]["p"]
    assert got.to_numpy() == pytest.approx(expect)
    assert len(got) == 2 and table.loc["terashima2016", "p"] == pytest.approx(expect[1])
    combo = res.conflicts[res.conflicts["statistic"].str.startswith("sorafenib_tace/")]
    assert combo["method"].tolist() == ["no_other_study"] and combo["p"].isna().all()
