"""Printed p-values that the derived effects cannot reproduce, and all consistency warnings.

A derived log HR ``yi`` with standard error ``sei`` implies the two-sided Wald p-value
``2 (1 - Phi(|yi| / sei))``. Where the source prints a p-value for the same contrast
(log-rank, Cox Wald, or a test it does not name), the two should agree up to the
rounding of what is printed: a reported HR whose CI and p disagree (Terashima et al.'s
Child-Pugh B: HR 2.999, 95% CI 1.478-6.087 implies p = 0.0024, printed 0.009), or a
medians + p derivation whose SE was raised to the floor the group sizes allow (Lee et
al.'s Child-Pugh B: printed p = 0.004, the floored pair implies 0.25), is worth a look
before the effect is pooled. The data layer cannot make this check (it would have to
import this layer), so it lives here and ``hccmeta validate`` adds it to the data's own
warnings (:attr:`hccmeta.data.Evidence.warnings`).
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import special

from hccmeta.data.checks import DataWarning
from hccmeta.data.evidence import Evidence
from hccmeta.data.schema import PValue, SurvivalRecord
from hccmeta.effects.base import z_two_sided
from hccmeta.effects.table import DerivedEffects

__all__ = [
    "P_Z_TOLERANCE",
    "consistency_warnings",
    "implied_p",
    "p_value_warnings",
    "warnings_table",
]

#: How far (on the |z| scale) the p implied by an effect may lie outside the rounding
#: interval of the printed p before it is flagged: the rounding of the printed estimate
#: and CI bounds (3 significant digits) moves z by a few hundredths; 0.1 leaves margin.
P_Z_TOLERANCE = 0.1

#: Tests whose p-value the Wald p of a derived log HR stands for.
_TESTS = frozenset({"log_rank", "cox_wald", "not_stated"})


def implied_p(yi: float, sei: float) -> float:
    """The two-sided p-value ``2 (1 - Phi(|yi| / sei))`` of an estimate and its SE."""
    return float(2.0 * special.ndtr(-abs(yi) / sei))


def _printed_interval(p: PValue) -> tuple[float, float]:
    """The p-values that round to the printed one (half a unit of its last digit)."""
    text = repr(float(p.value))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    half = 0.5 * 10.0**-decimals
    return max(p.value - half, 1e-300), min(p.value + half, 1.0)


def _z(p: float) -> float:
    return float(z_two_sided(p))


def _reproduces(p: PValue, p_imp: float) -> bool:
    lo, hi = _printed_interval(p)
    z_imp = _z(p_imp)
    if p.relation in ("<", "<="):
        return z_imp >= _z(hi) - P_Z_TOLERANCE
    if p.relation in (">", ">="):
        return z_imp <= _z(lo) + P_Z_TOLERANCE
    return _z(hi) - P_Z_TOLERANCE <= z_imp <= _z(lo) + P_Z_TOLERANCE


def p_value_warnings(evidence: Evidence, derived: DerivedEffects) -> list[DataWarning]:
    """Printed p-values of survival contrasts that their preferred derived effect does not
    reproduce (check ``p_not_reproduced``).

    For each contrast of a survival record with a p-value from a log-rank, Cox Wald or
    unnamed test, the primary derived log HR of that contrast (the one the analyses take)
    gives an implied two-sided p; it is flagged when it lies outside the printed p's
    rounding interval by more than :data:`P_Z_TOLERANCE` on the z scale (for "p < x":
    when it is larger than x allows).
    """
    eff = derived.effects
    if eff.empty:
        return []
    prim = eff[eff["primary"].astype(bool) & (eff["measure"] == "log_hr")]
    out: list[DataWarning] = []
    for study, rec in evidence.records():
        if not isinstance(rec, SurvivalRecord):
            continue
        loc = evidence.locations.get(rec.id)
        for k, c in enumerate(rec.contrasts):
            if c.p is None or c.p.test not in _TESTS:
                continue
            rows = prim[
                (prim["record"] == rec.id)
                & (prim["exposed"] == c.exposed)
                & (prim["reference"] == c.reference)
            ]
            for yi, sei, method, p_used in zip(
                rows["yi"], rows["sei"], rows["method"], rows["p"], strict=True
            ):  # Python scalars (pandas boxes them when iterating); no row dicts
                yi, sei = float(yi), float(sei)
                if not (math.isfinite(yi) and math.isfinite(sei) and sei > 0):
                    continue
                p_imp = implied_p(yi, sei)
                if _reproduces(c.p, p_imp):
                    continue
                other = ""
                if isinstance(p_used, float) and math.isfinite(p_used) and p_used != c.p.value:
                    other = f" (it was derived from p = {p_used:g} of another record)"
                line = evidence.field_lines.get(f"{rec.id}:contrasts[{k}].p")
                out.append(
                    DataWarning(
                        loc.file if loc else study.id,
                        line if line is not None else (loc.line if loc else None),
                        rec.id,
                        f"contrast {c.exposed} vs {c.reference}: printed p "
                        f"{c.p.relation} {c.p.value:g} ({c.p.test}) is not reproduced by the "
                        f"derived log HR {yi:.3f} (SE {sei:.3f}, {method}), which "
                        f"implies p = {p_imp:.2g}{other}",
                        "p_not_reproduced",
                        study.id,
                    )
                )
    return out


def consistency_warnings(
    evidence: Evidence, derived: DerivedEffects | None = None
) -> list[DataWarning]:
    """Every consistency warning: the data's own (:attr:`Evidence.warnings`: medians
    against landmarks, follow-up against landmarks, rates that are no whole fraction of
    n) and the printed p-values the derived effects cannot reproduce.

    Parameters
    ----------
    evidence : Evidence
        The loaded study data.
    derived : DerivedEffects, optional
        Effects derived with the production defaults if not given.
    """
    if derived is None:
        from hccmeta.effects.derive import derive_effects

        derived = derive_effects(evidence)
    return [*evidence.warnings, *p_value_warnings(evidence, derived)]


def warnings_table(warnings: list[DataWarning]) -> pd.DataFrame:
    """The warnings as a table: study, record, check, message, file, line."""
    cols = ["study", "record", "check", "message", "file", "line"]
    return pd.DataFrame([{c: getattr(w, c) for c in cols} for w in warnings], columns=cols)
