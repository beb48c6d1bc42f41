"""Invalid input to hccmeta.pool: an InputError whose message names the argument."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hccmeta as hm
from hccmeta import priors

Y = [-0.3, -0.1, -0.6]
SE = [0.2, 0.3, 0.25]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"yi": [-0.3, float("nan"), -0.6]}, "yi[1] is missing (NaN)"),
        ({"yi": [-0.3, "abc", -0.6]}, "yi[1] = 'abc' is not a number"),
        ({"yi": [-0.3, None, -0.6]}, "yi[1] = None is not a number"),
        ({"yi": [-0.3, float("inf"), -0.6]}, "yi[1] = inf is not finite"),
        ({"yi": "1,2,3"}, "yi must be a sequence of numbers"),
        ({"yi": [[1, 2], [3, 4]]}, "yi must be one-dimensional"),
        ({"yi": []}, "yi has 0 values but sei has 3"),
        ({"sei": [0.2, 0.0, 0.25]}, "sei[1] = 0: a standard error must be > 0"),
        ({"sei": [0.2, -0.3, 0.25]}, "sei[1] = -0.3: a standard error must be > 0"),
        ({"sei": [0.2, float("nan"), 0.25]}, "sei[1] is missing (NaN)"),
        ({"sei": [0.2, 0.3]}, "yi has 3 values but sei has 2"),
        ({"sei": None}, "give sei (standard errors) or vi (variances) with yi"),
        ({"vi": [0.04, 0.09, 0.06]}, "give sei or vi, not both"),
        ({"sei": None, "vi": [0.04, -0.09, 0.06]}, "vi[1] = -0.09: a variance must be > 0"),
        ({"ci_prob": 95}, "ci_prob = 95 looks like a percentage"),
        ({"ci_prob": 0}, "ci_prob must lie in (0, 1), got 0"),
        ({"ci_prob": "high"}, "ci_prob must be a number in (0, 1)"),
        ({"measure": "HR"}, "measure must be one of hr, or, rr, rd, generic, got 'HR'"),
        ({"method": "nuts"}, "method must be 'exact' or 'mcmc', got 'nuts'"),
        ({"model": "mixed"}, "model must be 'random' or 'fixed', got 'mixed'"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"seed": 1.5}, "seed must be a non-negative integer, got 1.5"),
        ({"study": ["a", "b"]}, "study has 2 labels for 3 studies"),
        ({"study": ["a", "b", "a"]}, "study[2] = 'a' repeats study[0]"),
        ({"study": ["a", "", "c"]}, "study[1] is empty"),
        ({"prior_tau": priors.Normal(0, 1)}, "prior_tau: Normal(mean=0.0, sd=1.0) puts mass on"),
        ({"prior_mu": priors.HalfNormal(1)}, "prior_mu: HalfNormal(scale=1.0) is not a prior for"),
        ({"prior_tau": "halfnormal:-1"}, "prior_tau: 'halfnormal:-1': HalfNormal: scale must"),
        ({"prior_tau": "gamma:1:1"}, "prior_tau: unknown prior family 'gamma'"),
        ({"prior_tau": 0.5}, "prior_tau must be a prior object from hccmeta.priors, got 0.5"),
        ({"model": "fixed", "prior_tau": priors.HalfNormal(0.5)}, "prior_tau must be None for"),
        ({"settings": {"draws": 10}, "method": "mcmc"}, "settings must be a SamplerSettings"),
    ],
)
def test_invalid_arguments(kwargs, message) -> None:
    args = {"yi": Y, "sei": SE, **kwargs}
    yi, sei = args.pop("yi"), args.pop("sei")
    with pytest.raises(hm.InputError) as err:
        hm.pool(yi, sei, **args)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("frame", "measure", "message"),
    [
        (
            pd.DataFrame({"study": ["a"], "yi": [0.1]}),
            "generic",
            "data: missing column(s) 'sei' or 'vi'",
        ),
        (
            pd.DataFrame({"study": ["a"], "est": [0.1]}),
            "generic",
            "data: missing column(s) 'yi' and 'sei'",
        ),
        (pd.DataFrame({"yi": [], "sei": []}), "generic", "data: the DataFrame has no rows"),
        (
            pd.DataFrame({"yi": [0.1, 0.2], "sei": [0.1, "x"]}),
            "generic",
            "data['sei'][1] = 'x' is not",
        ),
        (
            pd.DataFrame({"yi": [0.1, np.nan], "sei": [0.1, 0.2]}),
            "generic",
            "data['yi'][1] is missing",
        ),
        (
            pd.DataFrame({"yi": [0.1, 0.2], "sei": [0.1, 0.0]}),
            "generic",
            "data['sei'][1] = 0: a standard",
        ),
        # reversed CI
        (
            pd.DataFrame({"estimate": [0.8], "ci_lower": [1.2], "ci_upper": [0.5]}),
            "hr",
            "data (estimate, ci_lower, ci_upper, ci_level): lower = 1.2, upper = 0.5",
        ),
        # estimate outside its CI
        (
            pd.DataFrame({"estimate": [2.0], "ci_lower": [0.5], "ci_upper": [1.2]}),
            "hr",
            "estimate = 2 (at index (0,)) lies outside its CI (0.5, 1.2)",
        ),
        # a non-positive ratio
        (
            pd.DataFrame({"estimate": [-0.2], "ci_lower": [0.5], "ci_upper": [1.2]}),
            "hr",
            "estimate = -0.2 (at index (0,)): must be > 0",
        ),
        # CI level given in percent
        (
            pd.DataFrame(
                {"estimate": [0.8], "ci_lower": [0.5], "ci_upper": [1.2], "ci_level": [95]}
            ),
            "hr",
            "level = 95 (at index (0,)): give the confidence level as a fraction",
        ),
        # events above n
        (
            pd.DataFrame({"events_t": [12], "n_t": [10], "events_c": [3], "n_c": [10]}),
            "or",
            "data (events_t, n_t, events_c, n_c): events_exp = 12 is above n_exp = 10",
        ),
        (
            pd.DataFrame({"events_t": [2], "n_t": [10], "events_c": [3], "n_c": [10]}),
            "hr",
            "columns events_t, n_t, events_c, n_c give an or, rr or rd, not measure 'hr'",
        ),
    ],
)
def test_invalid_dataframes(frame, measure, message) -> None:
    with pytest.raises(hm.InputError) as err:
        hm.pool(frame, measure=measure)
    assert message in str(err.value)


def test_dataframe_and_sei_together() -> None:
    with pytest.raises(hm.InputError, match="give either a DataFrame or yi with sei/vi"):
        hm.pool(pd.DataFrame({"yi": Y, "sei": SE}), SE)


def test_summary_argument_errors() -> None:
    res = hm.pool(Y, SE)
    with pytest.raises(hm.InputError, match="ci_prob = 95 looks like a percentage"):
        res.summary(ci_prob=95)
    with pytest.raises(hm.InputError, match="scale must be 'analysis' or 'ratio'"):
        res.summary(scale="log")  # type: ignore[arg-type]
    with pytest.raises(hm.InputError, match="threshold must be a number"):
        res.prob_below("zero")  # type: ignore[arg-type]
