"""The exact engine under hostile input: a study with negligible information, priors that
make the posterior degenerate, a posterior it cannot integrate.

References: a study whose standard error is 1e11 times the others' has weight ~1e-22
relative to them, so the posterior equals the one without it to far below the
quadrature error (the reference is the exact fit without that study); the MCMC engine
is the independent check that the exact grid itself is not distorted (agreement within
4 Monte Carlo standard errors, the criterion of test_pool_mcmc.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import hccmeta as hm
from hccmeta import priors
from hccmeta.effects import from_ci
from hccmeta.errors import InputError
from tests.test_pool_mcmc import assert_agree

#: Relative agreement of two exact fits of the same posterior on different grids (the
#: quadrature error of the engine, see test_pool_exact.py).
GRID_RTOL = 1e-6

#: Four log hazard ratios with their SEs (made-up, near the issue's example: mu ~ -0.95).
Y = np.array([-0.9, -1.1, -0.8, -1.0])
S = np.array([0.25, 0.30, 0.40, 0.20])


def _negligible_study() -> tuple[float, float]:
    """HR 0.6 (0.3 to 1.2) given as a CI at level 1e-12: an SE of about 5.5e11."""
    d = from_ci(0.6, 0.3, 1.2, level=1e-12, log=True)
    return float(d.yi), float(d.sei)


def test_the_negligible_study_has_an_enormous_se() -> None:
    _, se = _negligible_study()
    # z_{(1 + L)/2} = sqrt(pi/2) L for small L; SE = ln(4) / (2 z). (1 + L)/2 is rounded
    # to a double (spacing 1.1e-16 near 0.5), so z is known to 1.1e-16 / 5e-13 = 2.2e-4.
    assert se == pytest.approx(np.log(4.0) / (2 * np.sqrt(np.pi / 2) * 1e-12), rel=2.5e-4)


@pytest.mark.parametrize("prior_tau", [priors.HalfNormal(0.5), priors.HalfCauchy(0.5)], ids=repr)
def test_a_study_without_information_changes_nothing(prior_tau: priors.Prior) -> None:
    y0, s0 = _negligible_study()
    without = hm.pool(Y, S, measure="hr", prior_tau=prior_tau).summary()
    with_it = hm.pool(np.append(Y, y0), np.append(S, s0), measure="hr", prior_tau=prior_tau)
    table = with_it.summary()
    for var in ("mu", "tau", "theta_new"):
        for col in ("mean", "median", "sd", "ci_lower", "ci_upper"):
            assert table.loc[var, col] == pytest.approx(without.loc[var, col], rel=GRID_RTOL), (
                var,
                col,
            )
    # the study's own shrunken estimate is the pooled effect's distribution
    theta = table.loc[f"theta[{len(Y) + 1}]"]
    assert theta["median"] == pytest.approx(without.loc["theta_new", "median"], rel=1e-5)


def test_enormous_se_through_the_command_line(tmp_path, capsys) -> None:
    import json

    from hccmeta.cli import main

    rows = "".join(
        f"s{i},{np.exp(y):.10f},{np.exp(y - 1.96 * s):.10f},{np.exp(y + 1.96 * s):.10f},0.95\n"
        for i, (y, s) in enumerate(zip(Y, S, strict=True))
    )
    head = "study,estimate,ci_lower,ci_upper,ci_level\n"
    (tmp_path / "a.csv").write_text(head + rows)
    (tmp_path / "b.csv").write_text(head + rows + "tiny_level,0.6,0.3,1.2,0.000000000001\n")
    out = []
    for name in ("a.csv", "b.csv"):
        assert main(["pool", "--csv", str(tmp_path / name), "--measure", "hr", "--json"]) == 0
        out.append(json.loads(capsys.readouterr().out))
    for var in ("mu", "tau"):
        for key, value in out[0][var].items():
            if isinstance(value, float):  # the numbers; natural_scale names the scale
                assert out[1][var][key] == pytest.approx(value, rel=GRID_RTOL)
            else:
                assert out[1][var][key] == value
    assert out[1]["mu"]["median"] == pytest.approx(-0.95, abs=0.05)


@pytest.mark.sampling
def test_mcmc_agrees_with_exact_with_the_negligible_study() -> None:
    y0, s0 = _negligible_study()
    assert_agree(np.append(Y, y0), np.append(S, s0), priors.Normal(0, 1), priors.HalfNormal(0.5))


@dataclass(frozen=True, repr=False)
class _FlatTau(priors.Prior):
    """An improper flat 'prior' on tau (density 1 on (0, inf)), with quantiles that pass
    the range rule: with one study its posterior of log(tau) does not decay upwards."""

    family: ClassVar[str] = "FlatTau"

    @property
    def lower(self) -> float:
        return 0.0

    def logpdf(self, x: object) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.where(x > 0, 0.0, -np.inf)

    def ppf(self, q: object) -> np.ndarray:
        return np.asarray(q, dtype=float)


def test_exact_engine_refuses_a_posterior_it_cannot_integrate() -> None:
    with pytest.raises(InputError, match="the exact engine cannot integrate this posterior"):
        hm.pool([0.1], [0.2], prior_tau=_FlatTau())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("halfnormal:1e-300", "HalfNormal: scale = 1e-300 is below the smallest accepted value"),
        ("halfnormal:1e300", "SCALE 1e+300 is outside the accepted range"),
        ("uniform:0:1e308", "HIGH 1e+308 is outside the accepted range"),
        ("normal:1e308:1e308", "MEAN 1e+308 is outside the accepted range"),
        ("normal:0:1e-300", "Normal: sd = 1e-300 is below the smallest accepted value"),
        ("lognormal:700:1", "LogNormal(mu=700.0, sigma=1.0) puts more than 0.1% of its mass"),
        ("invgamma:0.001:0.001", "InverseGamma(alpha=0.001, beta=0.001) puts more than 0.1%"),
        ("halfnormal:0x1", "SCALE in 'halfnormal:0x1' is not a number: '0x1'"),
        ("halfnormal:5_4", "SCALE in 'halfnormal:5_4' is not a number: '5_4'"),
        ("halfnormal:-0_97", "SCALE in 'halfnormal:-0_97' is not a number"),
        ("halfnormal:\u0665", "only ASCII digits 0-9 are accepted"),
        ("", "empty prior SPEC"),
        ("  ", "empty prior SPEC"),
    ],
)
def test_degenerate_prior_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        priors.parse(spec, argument="--prior-tau")
    assert str(err.value).startswith("--prior-tau: ")
    assert message in str(err.value)


def test_ratio_scale_overflow_is_refused_naming_the_prior() -> None:
    res = hm.pool(Y, S, measure="hr", prior_tau=priors.LogNormal(20.0, 1.0))
    with pytest.raises(InputError, match=r"numerically degenerate on the ratio scale.*LogNormal"):
        res.summary(scale="ratio")


@pytest.mark.parametrize(
    ("prior_tau", "finite"),
    [
        (priors.HalfNormal(0.5), True),
        (priors.Uniform(0, 2), True),
        (priors.HalfNormal(1.0), False),
        (priors.HalfCauchy(0.5), False),
        (priors.LogNormal(-1.975, 0.67), False),
        (priors.InverseGamma(2.42, 0.3), False),
    ],
    ids=repr,
)
def test_mean_of_the_new_study_ratio(prior_tau: priors.Prior, finite: bool) -> None:
    """E[exp(theta_new)] = E[exp(mu + tau^2/2) ...] exists only for a posterior of tau with
    a tail lighter than exp(-tau^2/2): worked out in PoolResult.theta_new_ratio_mean_exists.
    Where it exists, it equals the exact engine's mixture moment, exp(m + v/2) averaged."""
    res = hm.pool(Y, S, measure="hr", prior_tau=prior_tau)
    ratio = res.summary(scale="ratio")
    assert bool(np.isfinite(ratio.loc["theta_new", "mean"])) == finite
    assert ratio.attrs["undefined_moments"] == ([] if finite else ["theta_new"])
    # medians and intervals are defined either way: exp of those on the log scale
    log = res.summary()
    assert ratio.loc["theta_new", "median"] == pytest.approx(
        np.exp(log.loc["theta_new", "median"]), rel=1e-12
    )


def test_generic_estimates_too_large_for_scaled_priors_name_the_file(tmp_path, capsys) -> None:
    """Found by validation/fuzz/fuzz_cli.py (seed 20261201, csv #503): a generic estimate
    of 1e12 would give mu ~ Normal(0, 2.5e12), beyond the numeric policy's 1e12; the
    refusal names the file and says what to do."""
    from hccmeta.cli import main

    path = tmp_path / "yi_sei.csv"
    path.write_text("study,yi,sei\na,-0.5,0.2\nb,1e12,0.3\n")
    assert main(["pool", "--csv", str(path), "--measure", "generic", "--json"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"hccmeta pool: error: {path}: estimates and standard errors this large (s = max|yi| "
        "+ max sei = 1e+12) leave no room for priors scaled to the data (their scales would "
        "exceed 1e+12); rescale the data or give priors (--prior-mu, --prior-tau; prior_mu, "
        "prior_tau)\n"
    )
