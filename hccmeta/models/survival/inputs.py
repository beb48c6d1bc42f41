"""Inputs of the multi-format survival model: checks, the landmark terms, and the study
structure (which studies have a baseline and a log HR, which term belongs to which arm,
the overlap weights and the arms' sizes) that :func:`~hccmeta.models.survival.fit_survival`
builds its model from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from hccmeta.errors import InputError

__all__ = [
    "OVERLAPS",
    "SurvivalInputs",
    "check_frame",
    "check_numbers",
    "landmark_likelihood_terms",
    "prepare_inputs",
]

#: How the statistics of one study enter (``fit_survival(overlap=...)``).
OVERLAPS = ("joint", "families", "none")

_LN2 = math.log(2.0)
_CONTRAST_PRIORITY = {"hr": 0}


def check_frame(
    data: pd.DataFrame | None, name: str, required: Sequence[str], optional: Sequence[str] = ()
) -> pd.DataFrame:
    """A copy of ``data`` with the ``required`` columns (an InputError naming the missing
    ones) and the ``optional`` ones (NaN where absent); ``study`` and ``arm`` as
    non-empty strings. ``None`` gives an empty frame of those columns."""
    cols = [*required, *optional]
    if data is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in required if c not in data.columns]
    if missing:
        raise InputError(f"{name}: missing column(s) {missing}; expected {list(required)}")
    df = data.reset_index(drop=True).copy()
    for c in optional:
        if c not in df.columns:
            df[c] = np.nan
    for c in ("study", "arm"):
        if c in required:
            empty = (df[c].isna() | (df[c].astype(str).str.strip() == "")).to_numpy()
            if empty.any():
                raise InputError(f"{name}: row {int(np.flatnonzero(empty)[0])}, column {c}: empty")
            df[c] = df[c].astype(str)
    return df.loc[:, cols]


def check_numbers(
    df: pd.DataFrame, name: str, col: str, *, positive: bool = False, allow_nan: bool = False
) -> np.ndarray:
    """Column ``col`` of ``df`` as floats; an InputError naming the first row that is not
    a finite number (> 0 with ``positive``; NaN allowed with ``allow_nan``)."""
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if allow_nan:
        bad &= ~np.isnan(values)
    if positive:
        bad |= values <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a finite number > 0" if positive else "a finite number"
        raise InputError(f"{name}: row {i}, column {col}: {df[col].iloc[i]!r} is not {what}")
    return values


def landmark_likelihood_terms(
    landmarks: pd.DataFrame, *, terms: Literal["conditional", "marginal"] = "conditional"
) -> pd.DataFrame:
    """The landmark likelihood terms of :func:`~hccmeta.models.survival.fit_survival`, one
    row per landmark.

    Parameters
    ----------
    landmarks : pandas.DataFrame
        Columns ``study``, ``arm``, ``time`` (months), ``survival`` (S in [0, 1]) and,
        per row, ``n_eff`` (effective sample size ``S (1 - S) / Var[S]``) or ``sei`` (SE
        of ``ln(-ln S)``).
    terms : {"conditional", "marginal"}, keyword-only
        Successive conditional survivals (default) or each S(t) on its own.

    Returns
    -------
    pandas.DataFrame
        The input columns plus ``t_prev`` (start of the interval; 0 for the first),
        ``prob`` (conditional survival ``S(t) / S(t_prev)``, or S itself),
        ``var_log`` (variance of ``ln prob``), ``n_eff_term``, ``events_term`` (deaths,
        ``n_eff_term (1 - prob)``), ``y_cloglog`` and ``se_cloglog`` (NaN where
        ``prob`` is 0 or 1) and ``note``.
    """
    df = check_frame(landmarks, "landmarks", ("study", "arm", "time", "survival"), ("n_eff", "sei"))
    t = check_numbers(df, "landmarks", "time", positive=True)
    s = check_numbers(df, "landmarks", "survival")
    if ((s < 0) | (s > 1)).any():
        i = int(np.flatnonzero((s < 0) | (s > 1))[0])
        raise InputError(f"landmarks: row {i}, column survival: {s[i]:g} is not in [0, 1]")
    n_eff = check_numbers(df, "landmarks", "n_eff", positive=True, allow_nan=True)
    sei = check_numbers(df, "landmarks", "sei", positive=True, allow_nan=True)
    # Var[ln S] from n_eff (Var[S] = S (1 - S) / n_eff) or from the cloglog SE
    with np.errstate(divide="ignore", invalid="ignore"):
        v_from_n = (1.0 - s) / (s * n_eff)
        v_from_se = (sei * np.log(s)) ** 2
    var_log = np.where(np.isfinite(n_eff), v_from_n, v_from_se)
    neither = ~np.isfinite(n_eff) & ~np.isfinite(sei)
    if neither.any():
        i = int(np.flatnonzero(neither)[0])
        raise InputError(f"landmarks: row {i}: give n_eff or sei (SE of ln(-ln S))")
    from_se_at_bound = ~np.isfinite(n_eff) & ((s <= 0) | (s >= 1))
    if from_se_at_bound.any():
        i = int(np.flatnonzero(from_se_at_bound)[0])
        raise InputError(
            f"landmarks: row {i}: survival {s[i]:g} with a cloglog SE; give n_eff instead"
        )
    df["time"], df["survival"], df["n_eff"], df["sei"] = t, s, n_eff, sei
    df["var_log_marginal"] = var_log
    if df.duplicated(["study", "arm", "time"]).any():
        i = int(np.flatnonzero(df.duplicated(["study", "arm", "time"]).to_numpy())[0])
        raise InputError(f"landmarks: row {i} repeats a study, arm and time")
    df = df.sort_values(["study", "arm", "time"], kind="stable")
    out = []
    for _, g in df.groupby(["study", "arm"], sort=False):
        g = g.copy()
        s_arr = g["survival"].to_numpy()
        if np.any(np.diff(s_arr) > 0):
            raise InputError(
                f"landmarks: study {g['study'].iloc[0]!r}, arm {g['arm'].iloc[0]!r}: survival "
                f"increases with time ({list(s_arr)})"
            )
        v = g["var_log_marginal"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):  # v = 0 where S = 1: not used
            n_marg = np.where(
                np.isfinite(g["n_eff"].to_numpy()),
                g["n_eff"].to_numpy(),
                np.where(v > 0, (1.0 - s_arr) / (s_arr * v), np.nan),
            )
        notes = [""] * len(g)
        if terms == "conditional":
            s_prev = np.concatenate([[1.0], s_arr[:-1]])
            t_prev = np.concatenate([[0.0], g["time"].to_numpy()[:-1]])
            v_prev = np.concatenate([[0.0], v[:-1]])
            with np.errstate(divide="ignore", invalid="ignore"):
                prob = np.where(s_prev > 0, s_arr / s_prev, 0.0)
                v_inc = v - v_prev
                n_term = (1.0 - prob) / (prob * v_inc)
            for j in range(len(g)):
                ok = np.isfinite(n_term[j]) and n_term[j] > 0 and v_inc[j] > 0
                if not ok:
                    # no deaths in the interval, S = 0, or a non-increasing variance
                    # (rounding): the number at risk without censoring, n_eff S_prev
                    n_term[j] = n_marg[j] * s_prev[j]
                    notes[j] = "n at risk imputed as n_eff S(t_prev)"
            var_term = np.where(v_inc > 0, v_inc, np.nan)
        else:
            t_prev = np.zeros(len(g))
            prob = s_arr
            n_term = n_marg
            var_term = v
        g["t_prev"] = t_prev
        g["prob"] = prob
        g["var_log"] = var_term
        g["n_eff_term"] = n_term
        g["events_term"] = n_term * (1.0 - prob)
        with np.errstate(divide="ignore", invalid="ignore"):
            g["y_cloglog"] = np.where((prob > 0) & (prob < 1), np.log(-np.log(prob)), np.nan)
            g["se_cloglog"] = np.where(
                (prob > 0) & (prob < 1), np.sqrt(var_term) / np.abs(np.log(prob)), np.nan
            )
        g["note"] = notes
        out.append(g)
    result = (
        pd.concat(out)
        if out
        else df.assign(
            t_prev=[],
            prob=[],
            var_log=[],
            n_eff_term=[],
            events_term=[],
            y_cloglog=[],
            se_cloglog=[],
            note=[],
        )
    )
    return result.drop(columns="var_log_marginal").reset_index(drop=True)


@dataclass
class SurvivalInputs:
    """The checked inputs of one fit and the study structure built from them.

    Attributes
    ----------
    arms : DataFrame
        ``study``, ``arm``, ``n`` (the arm's size: as given, else implied by its
        statistics, else NaN) and ``n_source`` (``given``, ``landmark``, ``median``,
        ``other_arm`` or ``unknown``).
    reference, experimental : str
        The two regimens; ``arm_labels`` is ``[reference, experimental]``.
    studies : list of str
        The studies, those with exchangeable baselines first, then (``excluded``) the
        single experimental arms with a baseline of their own.
    hr_studies : list of str
        The studies with a log HR (an arm of the experimental regimen, not excluded).
    medians, landmarks, landmarks_used, contrasts, contrasts_used : DataFrame
        The terms (``landmarks`` as :func:`landmark_likelihood_terms`; ``contrasts``
        with ``used`` and ``note``).
    landmarks_input : DataFrame
        The landmark rows as given (for the data hash).
    weights : dict
        The overlap weight of each study's terms (1 unless ``overlap="families"``).
    phi : dict
        Per study with a used contrast, the thinning factor of its arms' sizes in the
        joint likelihood (``min(1, I / I_0)``: the contrast's information ``1 / se^2``
        against ``I_0 = n_1 n_0 / (n_1 + n_0)``, that of complete follow-up).
    """

    arms: pd.DataFrame
    reference: str
    experimental: str
    studies: list[str]
    excluded: set[str]
    hr_studies: list[str]
    has_exp: np.ndarray
    medians: pd.DataFrame
    landmarks: pd.DataFrame
    landmarks_used: pd.DataFrame
    landmarks_input: pd.DataFrame
    contrasts: pd.DataFrame
    contrasts_used: pd.DataFrame
    weights: dict[str, float]
    phi: dict[str, float]

    @property
    def arm_labels(self) -> list[str]:
        """``[reference, experimental]``."""
        return [self.reference, self.experimental]

    @property
    def study_index(self) -> dict[str, int]:
        """Position of each study in :attr:`studies`."""
        return {s: i for i, s in enumerate(self.studies)}

    @property
    def hr_index(self) -> dict[str, int]:
        """Position of each study with a log HR in :attr:`hr_studies`."""
        return {s: i for i, s in enumerate(self.hr_studies)}

    @property
    def n_excluded(self) -> int:
        """Number of single experimental arms with a baseline of their own."""
        return len(self.excluded)

    def arm_index(self, df: pd.DataFrame) -> np.ndarray:
        """The row of :attr:`arms` of each row (study, arm) of ``df``."""
        of = {
            (s, a): j
            for j, (s, a) in enumerate(zip(self.arms["study"], self.arms["arm"], strict=True))
        }
        return np.array(
            [of[(s, a)] for s, a in zip(df["study"], df["arm"], strict=True)], dtype=np.int64
        )

    def arm_structure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per arm: its study's position, whether its log median is shifted by the log
        HR (an experimental arm of a study with a log HR), and that log HR's position
        (0 where there is none)."""
        s_of, hr_of = self.study_index, self.hr_index
        study = self.arms["study"].map(s_of).to_numpy(dtype=np.int64)
        treat = (
            (self.arms["arm"] == self.experimental) & ~self.arms["study"].isin(list(self.excluded))
        ).to_numpy(dtype=float)
        hr = np.array([hr_of.get(st, 0) for st in self.arms["study"]], dtype=np.int64)
        return study, treat, hr

    def terms_table(self) -> pd.DataFrame:
        """Every likelihood term with ``term``, ``used`` and ``note``."""
        return pd.concat(
            [
                self.medians.assign(term="median", used=True, note=""),
                self.landmarks.assign(term="landmark"),
                self.contrasts.drop(columns="priority").assign(term="contrast"),
            ],
            ignore_index=True,
            sort=False,
        )


def _regimens(arm_df: pd.DataFrame, reference: str) -> tuple[str, str]:
    if len(arm_df) == 0:
        raise InputError("arms: no rows")
    if arm_df.duplicated(["study", "arm"]).any():
        i = int(np.flatnonzero(arm_df.duplicated(["study", "arm"]).to_numpy())[0])
        raise InputError(f"arms: row {i} repeats a study and arm")
    regimens = list(dict.fromkeys(arm_df["arm"]))
    if reference not in regimens:
        raise InputError(f"reference {reference!r} is not among the arms {regimens}")
    if len(regimens) > 2:
        raise InputError(f"arms: the model compares two regimens, got {regimens}")
    experimental = next((a for a in regimens if a != reference), None)
    if experimental is None:
        raise InputError(f"arms: no arm of a regimen other than {reference!r}")
    return reference, experimental


def _contrast_rows(
    contrasts: pd.DataFrame | None, comparative: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    ct = check_frame(contrasts, "contrasts", ("study", "yi", "sei"), ("kind",))
    ct["kind"] = ct["kind"].astype(object).fillna("hr").astype(str) if len(ct) else ct["kind"]
    ct["yi"] = check_numbers(ct, "contrasts", "yi")
    ct["sei"] = check_numbers(ct, "contrasts", "sei", positive=True)
    for i, s in enumerate(ct["study"]):
        if s not in comparative:
            raise InputError(
                f"contrasts: row {i}: study {s!r} does not have arms of both regimens in arms"
            )
    ct["priority"] = ct["kind"].map(lambda k: _CONTRAST_PRIORITY.get(str(k), 1))
    ct["used"] = False
    ct["note"] = ""
    for _, g in ct.groupby("study", sort=False):
        order = g.sort_values("priority", kind="stable").index
        ct.loc[order[0], "used"] = True
        ct.loc[order[1:], "note"] = f"superseded by the {ct.loc[order[0], 'kind']} row"
    return ct, ct[ct["used"]].reset_index(drop=True)


def _arm_sizes(
    arm_df: pd.DataFrame, med: pd.DataFrame, lm_used: pd.DataFrame
) -> tuple[np.ndarray, list[str]]:
    """Each arm's size: given; else implied by its first landmark (the number at risk at
    time 0 of the conditional terms, ``n_eff``); else by its median's SE (``1 / (sei^2
    ln(2)^2)``, the Kaplan-Meier median of an exponential sample without censoring);
    else that of the study's other arm; else unknown (NaN)."""
    n = check_numbers(arm_df, "arms", "n", positive=True, allow_nan=True).copy()
    source = ["given" if np.isfinite(x) else "unknown" for x in n]
    first_lm = {
        (s, a): float(x)
        for s, a, t0, x in zip(
            lm_used["study"], lm_used["arm"], lm_used["t_prev"], lm_used["n_eff_term"], strict=True
        )
        if t0 == 0 and np.isfinite(x) and x > 0
    }
    med_n = {
        (s, a): 1.0 / (float(se) ** 2 * _LN2**2)
        for s, a, se in zip(med["study"], med["arm"], med["sei"], strict=True)
    }
    for j, key in enumerate(zip(arm_df["study"], arm_df["arm"], strict=True)):
        if source[j] != "unknown":
            continue
        for name, table in (("landmark", first_lm), ("median", med_n)):
            if key in table:
                n[j], source[j] = table[key], name
                break
    for j, st in enumerate(arm_df["study"]):
        if source[j] == "unknown":
            other = [i for i, s2 in enumerate(arm_df["study"]) if s2 == st and i != j]
            known = [i for i in other if source[i] != "unknown"]
            if known:
                n[j], source[j] = n[known[0]], "other_arm"
    return n, source


def prepare_inputs(
    arms: pd.DataFrame,
    *,
    reference: str,
    medians: pd.DataFrame | None,
    landmarks: pd.DataFrame | None,
    contrasts: pd.DataFrame | None,
    landmark_likelihood: str,
    landmark_terms: Literal["conditional", "marginal"],
    single_arm_experimental: str,
    overlap: str,
) -> SurvivalInputs:
    """Check the inputs of :func:`~hccmeta.models.survival.fit_survival` and build the
    study structure (see :class:`SurvivalInputs`)."""
    arm_df = check_frame(arms, "arms", ("study", "arm"), ("n",))
    reference, experimental = _regimens(arm_df, reference)
    for name, value, allowed in (
        ("landmark_likelihood", landmark_likelihood, ("binomial", "cloglog")),
        ("landmark_terms", landmark_terms, ("conditional", "marginal")),
        ("single_arm_experimental", single_arm_experimental, ("arm_based", "exclude")),
        ("overlap", overlap, OVERLAPS),
    ):
        if value not in allowed:
            raise InputError(f"{name} must be one of {allowed}, got {value!r}")
    if overlap == "joint" and landmark_terms != "conditional":
        raise InputError(
            "overlap='joint' takes the landmarks as successive conditional survivals "
            "(landmark_terms='conditional'); the marginal form is for overlap='families' "
            "or 'none'"
        )
    arm_set = set(zip(arm_df["study"], arm_df["arm"], strict=True))
    seen = list(dict.fromkeys(arm_df["study"]))
    only_exp = {st for st in seen if (st, reference) not in arm_set}
    excluded = only_exp if single_arm_experimental == "exclude" else set()
    # studies with exchangeable baselines first, then those with a baseline of their own
    studies = [st for st in seen if st not in excluded] + [st for st in seen if st in excluded]
    s_of = {s: i for i, s in enumerate(studies)}
    has_exp = np.zeros(len(studies), dtype=bool)
    for s, a in arm_set:
        if a == experimental and s not in excluded:
            has_exp[s_of[s]] = True
    if not has_exp.any():
        raise InputError(
            f"arms: no study informs the contrast with {experimental!r} (single experimental "
            "arms are excluded unless single_arm_experimental='arm_based')"
        )
    hr_studies = [s for s, h in zip(studies, has_exp, strict=True) if h]
    comparative = {s for s in studies if (s, reference) in arm_set and (s, experimental) in arm_set}

    def check_arms(df: pd.DataFrame, name: str) -> None:
        for i, (s, a) in enumerate(zip(df["study"], df["arm"], strict=True)):
            if (s, a) not in arm_set:
                raise InputError(f"{name}: row {i}: study {s!r} has no arm {a!r} in arms")

    med = check_frame(medians, "medians", ("study", "arm", "yi", "sei"))
    check_arms(med, "medians")
    med["yi"] = check_numbers(med, "medians", "yi")
    med["sei"] = check_numbers(med, "medians", "sei", positive=True)
    if med.duplicated(["study", "arm"]).any():
        raise InputError("medians: a study arm has more than one median")

    lm_in = check_frame(
        landmarks, "landmarks", ("study", "arm", "time", "survival"), ("n_eff", "sei")
    )
    check_arms(lm_in, "landmarks")
    lm = landmark_likelihood_terms(lm_in, terms=landmark_terms)
    if landmark_likelihood == "cloglog":
        unusable = ~np.isfinite(lm["y_cloglog"].to_numpy()) | ~np.isfinite(
            lm["se_cloglog"].to_numpy()
        )
        lm["used"] = ~unusable
        lm.loc[unusable, "note"] = "survival 0 or 1 (or no variance): no cloglog term"
    else:
        lm["used"] = True
    lm_used = lm[lm["used"]].reset_index(drop=True)

    ct, ct_used = _contrast_rows(contrasts, comparative)
    if len(med) + len(lm_used) + len(ct_used) == 0:
        raise InputError("no likelihood terms: give medians, landmarks or contrasts")

    # how many kinds of statistic (median, landmark, contrast) each study reports
    families = {st: 0 for st in studies}
    for frame in (med, lm_used, ct_used):
        for st in set(frame["study"]):
            families[st] += 1
    weights = {
        st: (1.0 / max(m, 1) if overlap == "families" else 1.0) for st, m in families.items()
    }

    n, source = _arm_sizes(arm_df, med, lm_used)
    arm_out = arm_df.assign(n=n, n_source=source)
    phi: dict[str, float] = {}
    for s, se in zip(ct_used["study"], ct_used["sei"], strict=True):
        part = arm_out[arm_out["study"] == s]
        n1 = float(part.loc[part["arm"] == experimental, "n"].iloc[0])
        n0 = float(part.loc[part["arm"] == reference, "n"].iloc[0])
        if math.isfinite(n1) and math.isfinite(n0):
            phi[s] = min(1.0, (1.0 / float(se) ** 2) / (n1 * n0 / (n1 + n0)))
    return SurvivalInputs(
        arms=arm_out,
        reference=reference,
        experimental=experimental,
        studies=studies,
        excluded=excluded,
        hr_studies=hr_studies,
        has_exp=has_exp,
        medians=med,
        landmarks=lm,
        landmarks_used=lm_used,
        landmarks_input=lm_in,
        contrasts=ct,
        contrasts_used=ct_used,
        weights=weights,
        phi=phi,
    )
