"""What the report prints for readers: study labels, priors, sensitivity variants and
derivation options in words (issue 13, item 7). Every expected string is written by
hand from the object it describes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import hccmeta as hm
from hccmeta import priors
from hccmeta.data.labels import label_from_citation, relabel, study_labels
from hccmeta.effects.table import DeriveOptions
from hccmeta.report.words import options_text, prior_text, readable_priors, variant_text

from .conftest import STUDY_DATA


# ----------------------------------------------------------------------------- priors
@pytest.mark.parametrize(
    ("prior", "text"),
    [
        (priors.LogNormal(math.log(0.5), 0.5), "LogNormal(log 0.5, 0.5)"),
        (priors.LogNormal(math.log(0.25), 0.5), "LogNormal(log 0.25, 0.5)"),
        (priors.LogNormal(0.0, 0.5), "LogNormal(0, 0.5)"),
        (priors.HalfNormal(0.5), "HalfNormal(0.5)"),
        (priors.HalfNormal(1.0), "HalfNormal(1)"),
        (priors.Normal(0.0, 1.0), "Normal(0, 1)"),
        (priors.Normal(math.log(10.0), 1.5), "Normal(log 10, 1.5)"),
        (priors.InverseGamma(2.42, 0.30), "InverseGamma(2.42, 0.3)"),
        (priors.Uniform(0.0, 2.0), "Uniform(0, 2)"),
        (priors.HalfCauchy(0.5), "HalfCauchy(0.5)"),
        (priors.HalfStudentT(3.0, 0.5), "HalfStudentT(3, 0.5)"),
        # Turner 2015: log(tau^2) ~ N(-3.95, 1.34^2) is tau ~ LogNormal(-1.975, 0.67)
        (priors.turner2015_all_cause_mortality, "LogNormal(-1.975, 0.67)"),
        # sd sqrt(0.2^2 + 0.2^2) = 0.28284... to three digits
        (priors.bias_prior("moderate", 0), "Normal(0, 0.283)"),
    ],
)
def test_prior_text(prior: priors.Prior, text: str) -> None:
    assert prior_text(prior) == text


def test_readable_priors_in_a_sentence() -> None:
    text = (
        "tau_f = tau_scale * h_f, h_f ~ HalfNormal(1); tau_scale ~ "
        "LogNormal(mu=-0.6931471805599453, sigma=0.5); alpha_i ~ Normal(mu_alpha, sigma_alpha^2)"
    )
    assert readable_priors(text) == (
        "tau_f = tau_scale * h_f, h_f ~ HalfNormal(1); tau_scale ~ LogNormal(log 0.5, 0.5); "
        "alpha_i ~ Normal(mu_alpha, sigma_alpha^2)"
    )
    # a repr is read back to the same prior, so every family prints as prior_text does
    for prior in (priors.HalfCauchy(0.25), priors.InverseGamma(2.42, 0.3), priors.Uniform(0, 2)):
        assert readable_priors(f"tau ~ {prior!r}.") == f"tau ~ {prior_text(prior)}."


# --------------------------------------------------------------------------- variants
def test_variant_text_drops_how_it_was_computed() -> None:
    labels = {"terashima2016": "Terashima 2016"}
    assert (
        variant_text(
            "tau ~ HalfNormal(scale=1.0) instead of HalfNormal(scale=0.5) (importance-reweighted "
            "posterior of the tau_halfcauchy_0.5 fit, Pareto k -1.53)",
            labels,
        )
        == "tau ~ HalfNormal(1) instead of HalfNormal(0.5)"
    )
    assert (
        variant_text(
            "heterogeneity scale tau_scale ~ LogNormal(mu=-0.6931471805599453, sigma=0.001) "
            "(fixed at 0.5: each factor's tau ~ HalfNormal(0.5) independently, no borrowing) "
            "instead of LogNormal(mu=-0.6931471805599453, sigma=0.5) (refitted: importance "
            "reweighting not reliable (Pareto k 100.93 > 0.7))"
        )
        == "heterogeneity scale tau_scale ~ LogNormal(log 0.5, 0.001) (fixed at 0.5: each "
        "factor's tau ~ HalfNormal(0.5) independently, no borrowing) instead of "
        "LogNormal(log 0.5, 0.5)"
    )
    assert (
        variant_text(
            "likelihood raised to the power 0.8 (weakened), by Pareto-smoothed importance "
            "reweighting of the primary draws (Pareto k 0.27); psense: ArviZ power-scaling "
            "sensitivity to the likelihood (> 0.05 flags it)"
        )
        == "likelihood raised to the power 0.8 (weakened)"
    )
    assert variant_text("leave out study terashima2016", labels) == "leave out study Terashima 2016"
    # the rows of the sensitivity plot: what the variant is, not what it replaces
    assert (
        variant_text("tau ~ HalfNormal(scale=0.25) instead of HalfNormal(scale=0.5)", short=True)
        == "tau ~ HalfNormal(0.25)"
    )
    assert (
        variant_text(
            "tau ~ HalfNormal(scale=0.5): the primary analysis's prior (the primary fit)",
            short=True,
        )
        == "tau ~ HalfNormal(0.5)"
    )


# ---------------------------------------------------------------------------- options
def test_options_in_words() -> None:
    assert options_text(DeriveOptions()) == (
        "The variance of a log median was that of a Kaplan-Meier median, 2.08 / events; "
        "a p-value printed as a bound ('p < 0.05') was taken at the bound; where a study "
        "prints two p-values for one comparison, each record's own was used (a log-rank one "
        "where the record's own names no test); survival was taken as exponential where "
        "medians were turned into hazard ratios or their variances; events printed only for "
        "a whole population were split between its groups in proportion to their sizes; a "
        "survival proportion with neither CI nor number at risk was given the group size as "
        "its number at risk, less the censoring implied by the study's entry period and end "
        "of follow-up where both are printed; a count printed only as a rate was taken as "
        "the whole number "
        "that rounds to it; 0.5 was added to the cells of a table with a zero cell; an SE "
        "derived from a p-value was raised to the smallest the group sizes allow (a subgroup "
        "of unprinted size taken as at least 10% of its arm)."
    )
    other = DeriveOptions(
        median_variance="exponential_mle", p_bound="exclude", p_choice="largest",
        weibull_shape=1.5, impute_events=False, se_floor=False, continuity_correction=0.0,
        censoring_from_follow_up=False,
    )  # fmt: skip
    text = options_text(other)
    assert text.startswith("The variance of a log median was that of an exponential model, ")
    for words in (
        "a p-value printed as a bound ('p < 0.05') was not used",
        "the larger was used",
        "Weibull with shape 1.5",
        "were not split between its groups",
        "no continuity correction",
        "was not raised",
        "as its number at risk (nobody censored before the landmark)",
    ):
        assert words in text
    assert "=" not in text and "True" not in text


# ----------------------------------------------------------------------------- labels
def test_labels_from_the_citations_of_the_five_studies() -> None:
    ev = hm.load_studies(STUDY_DATA)
    labels = ev.study_labels
    assert labels["lee2017"] == "Lee 2017"
    assert labels["park2012"] == "Park 2012"
    assert labels["tamai2017"] == "Tamai 2017"
    assert labels["terashima2016"] == "Terashima 2016"
    # its citation names no author or year: the study file gives the label
    assert label_from_citation(ev.study("tace_resistant_n34").citation) is None
    assert labels["tace_resistant_n34"] == "TACE-resistant cohort (n = 34)"
    assert ev.studies_table.set_index("study").loc["lee2017", "label"] == "Lee 2017"


def test_label_from_citation_forms() -> None:
    assert label_from_citation("van der Berg A, Smith B. A trial. Lancet 2019;3:1-2.") == (
        "van der Berg 2019"
    )
    assert label_from_citation("Bartoš F, Otte WM. Priors. 2023. arXiv:2306.11468") == (
        "Bartoš 2023"
    )
    # the journal's year, not a year in the title
    assert label_from_citation("Kim J, Lee S. Outcomes 2008-2012. J Hepatol 2015;62:1.") == (
        "Kim 2015"
    )
    assert label_from_citation("Kim J. A study without a year.") is None


def test_shared_labels_get_letters_in_id_order() -> None:
    ev = hm.load_studies(STUDY_DATA)
    lee = ev.study("lee2017")
    twin = lee.model_copy(update={"id": "lee2017b"})
    first = lee.model_copy(update={"id": "lee2017a"})
    assert study_labels([twin, first, ev.study("park2012")]) == {
        "lee2017a": "Lee 2017a",
        "lee2017b": "Lee 2017b",
        "park2012": "Park 2012",
    }


def test_relabel_replaces_ids_as_words_only() -> None:
    labels = {"lee2017": "Lee 2017", "lee2017b": "Lee 2017b"}
    assert relabel("lee2017 and lee2017b; lee2017.os.pvi; study_data/lee2017.yaml:3", labels) == (
        "Lee 2017 and Lee 2017b; lee2017.os.pvi; study_data/lee2017.yaml:3"
    )


# ---------------------------------------------------------------------------- figures
def _sens_rows() -> pd.DataFrame:
    base = {"analysis": "a", "estimand": "p", "scale": "logit_p", "status": "ok",
            "natural_scale": "probability", "k": 2}  # fmt: skip
    rows = [
        {**base, "variant": "primary", "variant_group": "primary",
         "description": "the registered analysis (mu ~ Normal(mean=0.0, sd=2.0))",
         "natural_median": 0.5, "natural_ci_lower": 0.3, "natural_ci_upper": 0.7},
        {**base, "variant": "tau_halfnormal_1", "variant_group": "prior_tau",
         "description": "tau ~ HalfNormal(scale=1.0) instead of HalfNormal(scale=0.5) "
         "(importance-reweighted primary posterior, Pareto k 0.61)",
         "natural_median": 0.52, "natural_ci_lower": 0.2, "natural_ci_upper": 0.8},
        {**base, "variant": "loo_terashima2016", "variant_group": "leave_one_out",
         "description": "leave out study terashima2016",
         "natural_median": 0.45, "natural_ci_lower": 0.25, "natural_ci_upper": 0.66},
    ]  # fmt: skip
    t = pd.DataFrame(rows)
    for c in ("median", "ci_lower", "ci_upper"):
        t[c] = np.nan
    return t


def test_sensitivity_plot_in_words_and_percent() -> None:
    from hccmeta.report.sensitivity_plot import sensitivity_plot

    fig = sensitivity_plot(_sens_rows(), labels={"terashima2016": "Terashima 2016"})
    ax = fig.axes[0]
    texts = [t.get_text().strip() for t in ax.texts]
    assert "tau ~ HalfNormal(1)" in texts
    assert "leave out study Terashima 2016" in texts
    assert "52% (20% to 80%)" in texts
    assert not any("tau_halfnormal" in t or "loo_" in t for t in texts)
    assert ax.get_xlabel() == "probability (%)"
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t.endswith("%") for t in ticks)
    assert "under each sensitivity analysis" in fig.texts[0].get_text()
