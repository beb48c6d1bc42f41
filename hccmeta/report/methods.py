"""The methods section, generated from what was run.

Nothing here is a fixed text: each paragraph is written only if the report used what it
describes (a derivation method, an assumption, a model, an engine, a prior, a kind of
sensitivity variant, the frequentist comparison), with the numbers of the run (studies,
records, priors, sampler settings, diagnostics thresholds, variants), and cites only the
references those paragraphs need, numbered in order of first citation.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.report.collect import ReportData

__all__ = ["REFERENCES", "Methods", "methods"]

#: Every reference the methods section may cite: key -> (short label, full citation).
REFERENCES: dict[str, tuple[str, str]] = {
    "rover2020": (
        "Röver 2020",
        "Röver C. Bayesian random-effects meta-analysis using the bayesmeta R package. "
        "J Stat Softw. 2020;93(6):1-51. doi:10.18637/jss.v093.i06",
    ),
    "friede2017": (
        "Friede 2017",
        "Friede T, Röver C, Wandel S, Neuenschwander B. Meta-analysis of few small studies "
        "in orphan diseases. Res Synth Methods. 2017;8(1):79-91. doi:10.1002/jrsm.1217",
    ),
    "rover2021": (
        "Röver 2021",
        "Röver C, Bender R, Dias S, Schmid CH, Schmidli H, Sturtz S, Weber S, Friede T. On "
        "weakly informative prior distributions for the heterogeneity parameter in Bayesian "
        "random-effects meta-analysis. Res Synth Methods. 2021;12(4):448-474. "
        "doi:10.1002/jrsm.1475",
    ),
    "turner2015": (
        "Turner 2015",
        "Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for "
        "between-study heterogeneity and simple methods for their application in Bayesian "
        "meta-analysis. Stat Med. 2015;34(6):984-998. doi:10.1002/sim.6381",
    ),
    "bartos2023": (
        "Bartoš 2023",
        "Bartoš F, Otte WM, Gronau QF, Timmers B, Ly A, Wagenmakers E-J. Empirical prior "
        "distributions for Bayesian meta-analyses of binary and time-to-event outcomes. "
        "2023. arXiv:2306.11468",
    ),
    "tierney2007": (
        "Tierney 2007",
        "Tierney JF, Stewart LA, Ghersi D, Burdett S, Sydes MR. Practical methods for "
        "incorporating summary time-to-event data into meta-analysis. Trials. 2007;8:16. "
        "doi:10.1186/1745-6215-8-16",
    ),
    "parmar1998": (
        "Parmar 1998",
        "Parmar MKB, Torri V, Stewart L. Extracting summary statistics to perform "
        "meta-analyses of the published literature for survival endpoints. Stat Med. "
        "1998;17(24):2815-2834",
    ),
    "dersimonian1986": (
        "DerSimonian 1986",
        "DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials. "
        "1986;7(3):177-188. doi:10.1016/0197-2456(86)90046-2",
    ),
    "viechtbauer2005": (
        "Viechtbauer 2005",
        "Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the "
        "random-effects model. J Educ Behav Stat. 2005;30(3):261-293. "
        "doi:10.3102/10769986030003261",
    ),
    "viechtbauer2010": (
        "Viechtbauer 2010",
        "Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat "
        "Softw. 2010;36(3):1-48. doi:10.18637/jss.v036.i03",
    ),
    "pymc": (
        "PyMC",
        "Abril-Pla O, Andreani V, Carroll C, et al. PyMC: a modern, and comprehensive "
        "probabilistic programming framework in Python. PeerJ Comput Sci. 2023;9:e1516. "
        "doi:10.7717/peerj-cs.1516",
    ),
    "nutpie": (
        "nutpie",
        "Seyboldt A, and the PyMC developers. nutpie: a fast sampler for Bayesian "
        "posteriors (No-U-Turn sampler with mass-matrix adaptation). "
        "https://github.com/pymc-devs/nutpie",
    ),
    "arviz": (
        "ArviZ",
        "Kumar R, Carroll C, Hartikainen A, Martin O. ArviZ a unified library for "
        "exploratory analysis of Bayesian models in Python. J Open Source Softw. "
        "2019;4(33):1143. doi:10.21105/joss.01143",
    ),
    "vehtari2021": (
        "Vehtari 2021",
        "Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner P-C. Rank-normalization, "
        "folding, and localization: an improved R-hat for assessing the convergence of "
        "MCMC. Bayesian Anal. 2021;16(2):667-718. doi:10.1214/20-BA1221",
    ),
    "kallioinen2024": (
        "Kallioinen 2024",
        "Kallioinen N, Paananen T, Bürkner P-C, Vehtari A. Detecting and diagnosing prior "
        "and likelihood sensitivity with power-scaling. Stat Comput. 2024;34:57. "
        "doi:10.1007/s11222-023-10366-5",
    ),
}

#: How each derivation method works, in words, and what it cites.
_METHOD_TEXT: dict[str, tuple[str, tuple[str, ...]]] = {
    "ratio_ci": ("a reported ratio with its CI: SE = (ln U - ln L) / (2 z)", ()),
    "ratio_p": (
        "a reported ratio with its two-sided p: SE = |ln HR| / z(1 - p/2)",
        ("parmar1998",),
    ),
    "logrank_peto": (
        "the log-rank p, total events and group sizes: V = D n1 n2 / N^2, "
        "O - E = ± sqrt(V) z(1 - p/2), ln HR = (O - E) / V, SE = 1 / sqrt(V)",
        ("parmar1998", "tierney2007"),
    ),
    "medians_events": (
        "two medians under an exponential (or Weibull) model and the events per group: "
        "ln HR = ln(M_ref / M_exp), SE = sqrt(1/d1 + 1/d2)",
        ("tierney2007",),
    ),
    "medians_logrank_p": (
        "two medians under an exponential model and the two-sided test p: "
        "ln HR = ln(M_ref / M_exp), SE = |ln HR| / z(1 - p/2)",
        ("tierney2007",),
    ),
    "median_ci": ("a median with its CI, on the log scale", ()),
    "median_events": (
        "a median with its events: SE of ln(median) = 1 / sqrt(d (ln 2)^2), that of a "
        "Kaplan-Meier median (1 / sqrt(d), the exponential MLE's, in its sensitivity variant)",
        (),
    ),
    "landmark_ci": ("a survival proportion with its CI, on the cloglog scale ln(-ln S)", ()),
    "landmark_peto": (
        "a survival proportion and the number at risk: Peto variance S^2 (1 - S) / n, "
        "delta method to the cloglog scale",
        (),
    ),
    "landmark_follow_up": (
        "a survival proportion and the number at risk the group size, the entry period and "
        "the end of follow-up imply (uniform entry, administrative censoring; Greenwood's "
        "variance under the group's curve): binomial variance, cloglog scale",
        (),
    ),
    "landmark_binomial": (
        "a survival proportion and the group size: binomial variance, cloglog scale",
        (),
    ),
    "counts_2x2": ("events / n in two arms (log OR)", ()),
    "counts_1arm": ("events / n in one arm (logit proportion)", ()),
}

_MODEL_TEXT: dict[str, str] = {
    "random_effects": (
        "the normal-normal hierarchical (random-effects) model y_i ~ N(theta_i, s_i^2), "
        "theta_i ~ N(mu, tau^2)"
    ),
    "per_regimen": (
        "the normal-normal random-effects model fitted separately to each regimen's "
        "effects (log medians, cloglog landmarks)"
    ),
    "prognostic_joint": (
        "a joint model of the prognostic factors: each factor has its own pooled log HR "
        "mu_f, and the heterogeneities tau_f = tau_scale h_f (h_f ~ HalfNormal(1)) share a "
        "common scale with a log-normal hyperprior, so factors reported by one or two "
        "studies borrow strength on heterogeneity; the study effects are integrated out "
        "analytically and drawn afterwards from their conditional posterior"
    ),
    "proportions": (
        "a binomial likelihood with a logit link: arm-level study effects and, where a "
        "study compares the two regimens, a treatment contrast (log OR) that varies across "
        "studies; zero cells need no continuity correction"
    ),
    "survival_multiformat": (
        "a multi-format survival synthesis: a latent Weibull survival curve per study arm "
        "with a proportional-hazards treatment effect that varies across studies; the "
        "statistics one study reports on the same patients (median, landmark survival, HR "
        "or log-rank p) enter jointly, with the covariances of Kaplan-Meier statistics "
        "(Greenwood's for the landmarks, the median by its Bahadur representation, the HR "
        "through both arms' curves) evaluated under the fitted curves, so that shared "
        "patients are not counted twice; landmark numbers at risk not printed are "
        "imputed as the arm's size (no censoring before the landmark), which makes those "
        "intervals too narrow, and a median's SE is read as that of an exponential curve "
        "(the fitted shape sets how it moves with the curve, and widens it where the shape "
        "is below 1, but never narrows it); the sensitivity variant that weights each kind "
        "of statistic by 1/m instead is the conservative check"
    ),
}


@dataclass
class Methods:
    """The methods section: titled paragraphs, a priors table and the references.

    Citations in the paragraphs are written ``[n]``, numbered in order of first use.
    """

    paragraphs: list[tuple[str, str]] = field(default_factory=list)
    priors: pd.DataFrame = field(default_factory=pd.DataFrame)
    references: list[str] = field(default_factory=list)
    _keys: list[str] = field(default_factory=list)

    def cite(self, *keys: str) -> str:
        """`` [1, 3]`` for the given reference keys (registering them)."""
        numbers = []
        for key in keys:
            if key not in self._keys:
                self._keys.append(key)
                self.references.append(REFERENCES[key][1])
            numbers.append(self._keys.index(key) + 1)
        return " [" + ", ".join(str(n) for n in sorted(set(numbers))) + "]" if numbers else ""

    def add(self, title: str, text: str) -> None:
        """Append a paragraph."""
        self.paragraphs.append((title, text))


def _used_effects(data: ReportData) -> pd.DataFrame:
    parts = [s.result.effects for s in data.sections if not s.result.effects.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _fits(data: ReportData) -> list[tuple[str, Any]]:
    return [(s.name, fit) for s in data.sections for fit in s.result.fits.values()]


def _settings(fit: Any) -> dict[str, Any] | None:
    tree = getattr(fit, "tree", None)
    if tree is not None and "settings" in tree.attrs:
        value = tree.attrs["settings"]
        return json.loads(value) if isinstance(value, str) else dict(value)
    diag = getattr(fit, "diagnostics", None)
    settings = getattr(diag, "settings", None)
    if settings is not None:
        return {k: getattr(settings, k) for k in ("draws", "tune", "chains", "target_accept")}
    return None


def _data_paragraph(m: Methods, data: ReportData) -> None:
    ev = data.evidence
    kinds = Counter(s.source_kind for s in ev.studies)
    kinds_text = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items()))
    m.add(
        "Evidence",
        f"{len(ev.studies)} studies ({kinds_text}) with {ev.n_records} outcome records and "
        f"{ev.n_characteristics} baseline characteristics were read from "
        f"{ev.data_dir.name}/ (data hash {ev.data_hash[:12]}), validated against the schema "
        "and cross-field checks; every number carries its provenance (location in the source "
        "and a verbatim snippet). Statistics are recorded exactly as printed; what a source "
        "does not report is absent, never imputed silently.",
    )


def _derivation_paragraph(m: Methods, data: ReportData, used: pd.DataFrame) -> None:
    from hccmeta.effects import ASSUMPTIONS

    if used.empty:
        return
    counts = Counter(used["method"].astype(str))
    parts = []
    for method, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        text, keys = _METHOD_TEXT.get(method, (method, ()))
        parts.append(f"{text} ({method}, {n} effect{'s' if n != 1 else ''}){m.cite(*keys)}")
    m.add(
        "Effect sizes",
        f"The {len(used)} effects entering the analyses were derived from the reported "
        "statistics by these methods, preferring for each estimand a reported ratio with its "
        "CI, then a ratio with its p-value, then the log-rank statistics, then medians: "
        + "; ".join(parts)
        + ".",
    )
    tags = Counter(t for a in used["assumptions"].fillna("").astype(str) for t in a.split(";") if t)
    if tags:
        words = "; ".join(
            f"{ASSUMPTIONS.get(t, t)} ({t}, {n} effect{'s' if n != 1 else ''})"
            for t, n in sorted(tags.items())
        )
        m.add(
            "Assumptions of the derivations",
            "Each derived effect records the assumptions it relied on: "
            + words
            + ". "
            + _options(data),
        )


def _options(data: ReportData) -> str:
    """The derivation options in sentences (:func:`hccmeta.report.words.options_text`)."""
    from hccmeta.report.words import options_text

    return options_text(data.derived.options)


def _model_paragraphs(m: Methods, data: ReportData) -> None:
    kinds = Counter(s.result.analysis.model for s in data.sections if s.result.status == "ok")
    engines = Counter(getattr(fit, "method", "mcmc") for _, fit in _fits(data))
    for kind, n in kinds.items():
        text = _MODEL_TEXT.get(kind, kind)
        cite = ""
        if kind in ("random_effects", "per_regimen") and engines.get("exact"):
            text += (
                ", computed by numerical integration over tau with mu integrated "
                "analytically, as R's bayesmeta does"
            )
            cite = m.cite("rover2020")
        m.add(
            f"Model: {kind.replace('_', ' ')}",
            f"{n} analys{'es' if n != 1 else 'is'}: {text}{cite}.",
        )
    mcmc = [(name, fit) for name, fit in _fits(data) if getattr(fit, "method", "mcmc") == "mcmc"]
    if mcmc:
        settings = [s for _, fit in mcmc if (s := _settings(fit)) is not None]
        desc = ""
        if settings:
            chains = sorted({int(s.get("chains", 0)) for s in settings})
            draws = sorted({int(s.get("draws", 0)) for s in settings})
            tune = sorted({int(s.get("tune", 0)) for s in settings})
            accept = sorted({float(s.get("target_accept", 0)) for s in settings})
            desc = (
                f" with {'/'.join(map(str, chains))} chains of "
                f"{'/'.join(map(str, draws))} draws after {'/'.join(map(str, tune))} tuning "
                f"steps (target acceptance {'/'.join(f'{a:g}' for a in accept)})"
            )
        failed = sum(1 for _, fit in mcmc if not getattr(fit, "ok", True))
        retried = sum(
            1 for _, fit in mcmc if getattr(getattr(fit, "diagnostics", None), "retries", 0)
        )
        m.add(
            "Sampling and diagnostics",
            f"{len(mcmc)} fits were sampled with the No-U-Turn sampler of nutpie{m.cite('nutpie')} "
            f"from PyMC models{m.cite('pymc')}{desc}. Every fit was checked for the "
            "rank-normalised split R-hat (<= 1.01), bulk and tail effective sample sizes "
            f"(>= 100 per chain) and divergent transitions (none allowed){m.cite('vehtari2021')}, "
            f"computed as ArviZ computes them{m.cite('arviz')}; a fit failing them was sampled "
            "again with twice the draws, and with a higher target acceptance unless only "
            "the effective sample sizes fell short. "
            f"{retried} fit{'s were' if retried != 1 else ' was'} re-sampled; "
            f"{failed} failed the checks after the retries"
            + (" and are flagged in their sections." if failed else "."),
        )


def _prior_paragraph(m: Methods, data: ReportData) -> None:
    rows = []
    for s in data.sections:
        for param, prior in s.result.priors.items():
            rows.append({"analysis": s.name, "parameter": param, "prior": prior})
    m.priors = pd.DataFrame(rows, columns=["analysis", "parameter", "prior"])
    if not rows:
        return
    counts = Counter(r["prior"] for r in rows)
    text = (
        f"The {len(rows)} priors of the {m.priors['analysis'].nunique()} analyses with "
        "eligible records are listed per analysis in the table below"
    )
    n_mu = sum(n for p, n in counts.items() if p.endswith("Normal(mean=0.0, sd=1.0)"))
    n_tau = sum(n for p, n in counts.items() if p.endswith("HalfNormal(scale=0.5)"))
    if n_tau:
        text += (
            f". {n_tau} heterogeneity parameters have the weakly informative prior "
            "tau ~ HalfNormal(0.5) recommended for meta-analyses of few studies on the "
            f"log-ratio scale{m.cite('friede2017', 'rover2021')}"
        )
        if n_mu:
            text += (
                f", and {n_mu} pooled log ratios the prior Normal(0, 1) (95% of ratios "
                "between 0.14 and 7.1)"
            )
    m.add("Priors", text + ".")


def _frequentist_paragraph(m: Methods, data: ReportData) -> None:
    methods = set()
    for s in data.sections:
        freq = s.result.frequentist
        if freq is not None and not freq.empty and "method" in freq.columns:
            methods |= set(freq["method"].astype(str).str.upper())
    if not methods:
        return
    parts = []
    if "REML" in methods:
        parts.append(
            f"restricted maximum likelihood (REML){m.cite('viechtbauer2005', 'viechtbauer2010')}"
        )
    if "DL" in methods:
        parts.append(f"the DerSimonian-Laird estimator{m.cite('dersimonian1986')}")
    m.add(
        "Frequentist comparison",
        "For comparison, the normal-normal analyses were also fitted by "
        + " and by ".join(parts)
        + " of tau^2, with Wald intervals for mu, as metafor's rma() does.",
    )


def _sensitivity_paragraph(m: Methods, data: ReportData) -> None:
    table = data.sensitivity
    if table is None or table.empty:
        return
    variants = table[table["variant"] != "primary"]
    groups = variants.drop_duplicates(["analysis", "variant"]).groupby("variant_group").size()
    text_parts = [f"{str(g).replace('_', ' ')} ({n})" for g, n in groups.items()]
    text = (
        f"Every analysis was re-run under {data.n_variants} variants in all: "
        + ", ".join(text_parts)
        + "."
    )
    blob = (
        " ".join(variants["variant"].astype(str)).lower()
        + " "
        + " ".join(variants["description"].astype(str)).lower()
    )
    if "turner" in blob:
        turner = m.cite("turner2015")
        text += f" The prior grid includes the Turner et al. empirical prior for tau{turner}"
        text += (
            f" and the Bartoš et al. empirical log-HR prior{m.cite('bartos2023')}."
            if "barto" in blob
            else "."
        )
    elif "barto" in blob:
        bartos = m.cite("bartos2023")
        text += f" The prior grid includes the Bartoš et al. empirical log-HR prior{bartos}."
    if "power" in blob or "psense" in blob:
        text += (
            " Prior and likelihood sensitivity were also measured by power-scaling"
            f"{m.cite('kallioinen2024')}."
        )
    failed = variants[variants["status"] == "failed"].drop_duplicates(["analysis", "variant"])
    if not failed.empty:
        text += (
            f" {len(failed)} variant{'s' if len(failed) != 1 else ''} failed and "
            f"{'are' if len(failed) != 1 else 'is'} listed with the error in its table."
        )
    m.add("Sensitivity analyses", text)


def _software_paragraph(m: Methods, data: ReportData) -> None:
    from importlib import metadata

    def v(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    mcmc = any(getattr(fit, "method", "mcmc") == "mcmc" for _, fit in _fits(data))
    sampler = (
        f"PyMC {v('pymc')}{m.cite('pymc')}, nutpie {v('nutpie')}{m.cite('nutpie')}, "
        if mcmc
        else ""
    )
    m.add(
        "Software",
        f"hccmeta {v('hccmeta')} (Python {platform.python_version()}), {sampler}"
        f"ArviZ {v('arviz')}{m.cite('arviz')} (posterior containers, netCDF), NumPy "
        f"{v('numpy')}, SciPy {v('scipy')}, pandas {v('pandas')}, xarray {v('xarray')}, "
        f"matplotlib {v('matplotlib')}. The exact versions of every package are in "
        "provenance.json.",
    )


def methods(data: ReportData) -> Methods:
    """The methods section of a report, from what ``data`` shows was run."""
    m = Methods()
    _data_paragraph(m, data)
    _derivation_paragraph(m, data, _used_effects(data))
    _model_paragraphs(m, data)
    _prior_paragraph(m, data)
    _frequentist_paragraph(m, data)
    _sensitivity_paragraph(m, data)
    _software_paragraph(m, data)
    return m
