"""Bias distributions of the studies behind a comparison, from their risk of bias.

Each study's result in a comparison of interventions gets an additive bias
``b_i ~ N(m_i, v_i^2)`` on the analysis scale (:func:`hccmeta.priors.bias_prior`): its
size is set by the overall RoB 2 / ROBINS-I judgement of the comparison (a study not
assessed counts as ``not_assessed``), its sign by the predicted direction of the
assessment:

- ``favours_group``: the favoured group looks better than it is, so the bias moves the
  estimate towards benefit for that group (down for a hazard ratio of the favoured
  exposed group, up for an odds ratio of response, down for an odds ratio of harm);
- ``towards_null`` / ``away_from_null``: against / along the sign of the study's own
  estimate;
- ``unpredictable``: mean 0.

The rows carry the judgements (``risk_of_bias``, ``bias_direction``, ``bias_favours``,
``randomised``: :func:`hccmeta.data.bias.annotate_risk_of_bias`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import pandas as pd

from hccmeta.priors import Normal, bias_prior

__all__ = ["bias_sign", "describe_bias", "study_bias"]


def _judgement(row: pd.Series) -> str:
    value = row.get("risk_of_bias")
    return str(value) if isinstance(value, str) else "not_assessed"


def bias_sign(
    row: pd.Series,
    *,
    good: str,
    exposed: Collection[str],
    reference: Collection[str],
    estimate: float,
) -> int:
    """The sign of a study's mean bias on the analysis scale (+1 up, -1 down, 0 none).

    Parameters
    ----------
    row : Series
        A row of the study with ``bias_direction`` and ``bias_favours``.
    good : {"below", "above"}
        Which side of zero is better for the exposed group (a hazard ratio: below).
    exposed, reference : collections of str
        The study's group ids on each side of the comparison.
    estimate : float
        The study's own estimate of the comparison (for the null-relative directions).
    """
    direction = row.get("bias_direction")
    if direction == "favours_group":
        favoured = row.get("bias_favours")
        side = 1 if favoured in exposed else -1 if favoured in reference else 0
        return side * (-1 if good == "below" else 1)
    if direction in ("towards_null", "away_from_null") and math.isfinite(estimate):
        own = int(math.copysign(1, estimate)) if estimate != 0 else 0
        return -own if direction == "towards_null" else own
    return 0


def study_bias(
    rows: pd.DataFrame,
    *,
    good: str,
    exposed_role: str | None = None,
    variant: str = "default",
) -> dict[str, Normal | None]:
    """The bias distribution of each study of a comparison (None: no bias term).

    ``rows`` are the effect rows the comparison takes: one contrast row per study
    (random-effects pooling), or per-arm group rows with a ``role`` (the binomial
    contrast model, ``exposed_role`` naming the exposed regimen; a study with one arm
    only is not in the comparison and gets no entry).
    """
    out: dict[str, Normal | None] = {}
    for study, part in rows.groupby(rows["study"].astype(str), sort=False):
        contrast = part[part["kind"] == "contrast"]
        if not contrast.empty:
            row = contrast.iloc[0]
            exposed, reference = {str(row["exposed"])}, {str(row["reference"])}
            estimate = float(row["yi"])
        else:
            row = part.iloc[0]
            is_exp = part["role"].astype(str) == str(exposed_role)
            exposed = set(part.loc[is_exp, "exposed"].astype(str))
            reference = set(part.loc[~is_exp, "exposed"].astype(str))
            if not exposed or not reference:
                continue  # one arm only: no comparison to adjust
            estimate = _log_odds_ratio(part, is_exp)
        sign = bias_sign(row, good=good, exposed=exposed, reference=reference, estimate=estimate)
        out[str(study)] = bias_prior(_judgement(row), sign, variant=variant)
    return out


def _log_odds_ratio(part: pd.DataFrame, is_exp: pd.Series) -> float:
    """The log odds ratio of two arms' counts (0.5 added to every cell)."""
    if is_exp.sum() != 1 or (~is_exp).sum() != 1:
        return math.nan
    a, n1 = (float(part.loc[is_exp, c].iloc[0]) for c in ("events_exposed", "n_exposed"))
    c, n2 = (float(part.loc[~is_exp, c].iloc[0]) for c in ("events_exposed", "n_exposed"))
    return math.log((a + 0.5) * (n2 - c + 0.5) / ((n1 - a + 0.5) * (c + 0.5)))


def describe_bias(bias: Mapping[str, Normal | None], rows: pd.DataFrame) -> str:
    """The bias distributions in words (analysis scale), studies with the same one
    together: 'serious risk of bias in tace_resistant_n34 and terashima2016: bias ~
    N(-0.30, 0.30²)'."""
    judged = {
        str(s): _judgement(r)
        for s, r in rows.drop_duplicates("study").set_index("study").iterrows()
    }
    groups: dict[tuple[str, str], list[str]] = {}
    for study, dist in bias.items():
        what = judged.get(study, "not_assessed").replace("_", " ")
        text = "no bias term" if dist is None else f"bias ~ N({dist.mean:.2f}, {dist.sd:.2f}²)"
        groups.setdefault((what, text), []).append(study)
    return "; ".join(
        f"{what} risk of bias in {' and '.join(studies)}: {text}"
        for (what, text), studies in groups.items()
    )
