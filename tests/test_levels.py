"""Reference levels: the recombination of a Cox model's contrasts against a merged level,
and the registry's refusal to pool contrasts of different levels without a mapping.

Source of the numbers: Terashima et al. 2016, Table 3 (multivariable Cox model of survival
after sorafenib): Child-Pugh B (n = 31) vs A(5) (n = 21) HR 2.999 (95% CI 1.478-6.087);
A(6) (n = 27) vs A(5) HR 2.328 (1.109-4.884).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

import hccmeta as hm
from hccmeta.analyses.levels import check_levels, combine_levels
from hccmeta.analyses.registry import LevelMap, Selector, load_registry
from hccmeta.analyses.run import Variation
from hccmeta.analyses.select import select_effects
from hccmeta.analyses.take import selectors as _selectors
from hccmeta.analyses.take import take_roles as _take_roles
from hccmeta.effects import derive_effects, log_hr_merged_reference
from hccmeta.effects.levels import shared_reference_correlation
from hccmeta.errors import InputError

HAND_TOL = 5e-6

# By hand (z = 1.959964):
#   beta_B  = ln 2.999 = 1.098279, SE_B  = (ln 6.087 - ln 1.478) / (2 z) = 0.361095
#   beta_A6 = ln 2.328 = 0.845010, SE_A6 = (ln 4.884 - ln 1.109) / (2 z) = 0.378197
#   weights of A(5), A(6): 21/48 = 0.4375, 27/48 = 0.5625
#   H = 0.4375 + 0.5625 x 2.328 = 1.746999; ln HR(B vs A) = 1.098279 - ln 1.746999
#     = 1.098279 - 0.557900 = 0.540379 (HR 1.716657)
#   c = 0.5625 x 2.328 / 1.746999 = 0.749571
#   rho(B, A6) = (1/21) / sqrt((1/31 + 1/21)(1/27 + 1/21))
#              = 0.047619 / sqrt(0.079877 x 0.084656) = 0.579082
#   Var = 0.361095^2 + c^2 0.378197^2 - 2 c rho 0.361095 x 0.378197
#       = 0.130389 + 0.080364 - 0.118556 = 0.092198; SE = 0.303641
#   with zero covariance: Var = 0.210753, SE = 0.459079
BETA_B, SE_B = 1.098279, 0.361095
BETA_A6, SE_A6 = 0.845010, 0.378197


def test_merged_reference_by_hand() -> None:
    beta_b = math.log(2.999)
    se_b = (math.log(6.087) - math.log(1.478)) / (2 * 1.959964)
    beta_a6 = math.log(2.328)
    se_a6 = (math.log(4.884) - math.log(1.109)) / (2 * 1.959964)
    assert (beta_b, se_b, beta_a6, se_a6) == pytest.approx(
        (BETA_B, SE_B, BETA_A6, SE_A6), abs=HAND_TOL
    )
    assert shared_reference_correlation(21, 31, 27) == pytest.approx(0.579082, abs=HAND_TOL)
    d = log_hr_merged_reference(beta_b, se_b, [beta_a6], [se_a6], 21, [27], n_exposed=31)
    assert float(d.yi) == pytest.approx(0.540379, abs=HAND_TOL)
    assert math.exp(float(d.yi)) == pytest.approx(1.716657, abs=1e-5)
    assert float(d.sei) == pytest.approx(0.303641, abs=HAND_TOL)
    assert d.method == "recombined_reference"
    assert d.assumptions() == ("recombined_reference", "reference_covariance_shared")
    z = log_hr_merged_reference(beta_b, se_b, [beta_a6], [se_a6], 21, [27], covariance="zero")
    assert float(z.yi) == pytest.approx(0.540379, abs=HAND_TOL)
    assert float(z.sei) == pytest.approx(0.459079, abs=HAND_TOL)


def test_merged_reference_reduces_to_the_contrast_when_sublevels_agree() -> None:
    # If A(6) has the hazard of A(5) (beta = 0), class A is A(5): the estimate is beta_B;
    # with a vanishing SE of that zero contrast the variance is Var(beta_B).
    d = log_hr_merged_reference(0.7, 0.3, [0.0], [1e-9], 20, [25], n_exposed=30)
    assert float(d.yi) == pytest.approx(0.7)
    assert float(d.sei) == pytest.approx(0.3, abs=1e-6)


def test_merged_reference_checks() -> None:
    with pytest.raises(InputError, match="one entry per merged level"):
        log_hr_merged_reference(1.0, 0.3, [0.5, 0.2], [0.3], 20, [10, 10], n_exposed=5)
    with pytest.raises(InputError, match="n_exposed"):
        log_hr_merged_reference(1.0, 0.3, [0.5], [0.3], 20, [10])
    with pytest.raises(InputError, match="covariance"):
        log_hr_merged_reference(1.0, 0.3, [0.5], [0.3], 20, [10], covariance="one")  # type: ignore[arg-type]


def test_terashima_child_pugh_b_vs_class_a_enters_the_prognostic_analysis() -> None:
    ev = hm.load_studies()
    reg = load_registry(ev.data_dir)
    analysis = reg.get("prognostic_factors")
    assert analysis.factors is not None
    roles = [(name, _selectors(f.select)) for name, f in analysis.factors.items()]
    rows = _take_roles(derive_effects(ev).effects, roles, Variation())
    cp = rows[(rows["role"] == "child_pugh_b_vs_a") & (rows["study"] == "terashima2016")]
    assert len(cp) == 1
    row = cp.iloc[0]
    assert row["method"] == "recombined_reference"
    assert row["reference_level"] == "A" and row["n_reference"] == 48
    assert row["yi"] == pytest.approx(0.540379, abs=HAND_TOL)
    assert row["sei"] == pytest.approx(0.303641, abs=HAND_TOL)
    assert "recombined_reference" in row["assumptions"]
    # B vs A(5) itself is no longer taken for "B vs A"
    assert not (rows["effect"].str.endswith("cp_b~cp_a5/log_hr/ratio_ci")).any()


def _contrast(study: str, var: str | None, exp: str, ref: str) -> dict[str, object]:
    return {
        "study": study,
        "kind": "contrast",
        "subgroup_variable": var,
        "exposed_level": exp if var else None,
        "reference_level": ref if var else None,
        "exposed_regimen": exp if not var else "sorafenib",
        "reference_regimen": ref if not var else "sorafenib",
        "reversed": False,
    }


def test_check_levels_refuses_different_reference_levels() -> None:
    rows = pd.DataFrame(
        [
            _contrast("lee2017", "child_pugh_class", "B", "A"),
            _contrast("terashima2016", "child_pugh_class", "B", "A5"),
        ]
    )
    with pytest.raises(InputError, match=r"reference levels differ.*A5 \(terashima2016\)"):
        check_levels(rows, [], what="child_pugh_b_vs_a")
    ok = LevelMap(
        variable="child_pugh_class",
        level="A",
        same_as=["A5"],
        reason="taken as the same level for this test only",
    )
    check_levels(rows, [ok])


def test_check_levels_covers_regimens_and_other_variables() -> None:
    rows = pd.DataFrame(
        [
            _contrast("s1", None, "sorafenib_tace", "sorafenib"),
            _contrast("s2", None, "sorafenib_then_intrahepatic", "sorafenib"),
        ]
    )
    with pytest.raises(InputError, match="exposed levels differ"):
        check_levels(rows, [])
    m = LevelMap(
        variable="regimen",
        level="sorafenib_tace",
        same_as=["sorafenib_then_intrahepatic"],
        reason="intrahepatic-targeted therapy stands for TACE here",
    )
    check_levels(rows, [m])
    cross = pd.DataFrame(
        [
            _contrast("s1", "portal_vein_invasion", "main_or_lobar", "segmental_or_none"),
            _contrast("s2", "vascular_invasion", "positive", "negative"),
        ]
    )
    with pytest.raises(InputError, match="exposed levels differ"):
        check_levels(cross, [])
    maps = [
        LevelMap(
            variable="vascular_invasion",
            level=lv,
            same_as=[f"portal_vein_invasion={src}"],
            reason="the levels are taken to be the same here",
        )
        for lv, src in (("positive", "main_or_lobar"), ("negative", "segmental_or_none"))
    ]
    check_levels(cross, maps)


def test_level_map_needs_a_mapping_and_a_reason() -> None:
    with pytest.raises(ValueError, match="same_as"):
        LevelMap(variable="v", level="A", reason="a reason long enough to pass")
    with pytest.raises(ValueError, match="at least two"):
        LevelMap(variable="v", level="A", combine=["A5"], reason="a reason long enough to pass")
    with pytest.raises(ValueError):
        LevelMap(variable="v", level="A", same_as=["B"], reason="short")


def test_analysis_levels_reach_every_selector() -> None:
    reg = load_registry(hm.load_studies().data_dir)
    os_an = reg.get("os_tace_plus_sorafenib_vs_sorafenib")
    sels = _selectors(os_an.select) + [
        s for alt in os_an.alternatives for s in _selectors(alt.select)
    ]
    assert sels and all(
        {m.level for m in s.levels} >= {"sorafenib_tace", "sorafenib"} for s in sels
    )


def test_combine_levels_needs_every_sublevel() -> None:
    # Only B vs A(5) without A(6) vs A(5): nothing to recombine, the table is unchanged.
    eff = derive_effects(hm.load_studies()).effects
    part = eff[~eff["effect"].str.contains("cp_a6~cp_a5")]
    m = LevelMap(
        variable="child_pugh_class",
        level="A",
        combine=["A5", "A6"],
        reason="class A is scores 5 and 6",
    )
    assert len(combine_levels(part, [m])) == len(part)
    assert len(combine_levels(eff, [m])) == len(eff) + 1
    sel = Selector(
        kind="contrast",
        measure="log_hr",
        subgroup_variable=["child_pugh_class"],
        exposed_level=["B"],
        reference_level=["A5", "A"],
        levels=[m],
    )
    # asking for both A(5) and the merged A takes two effects of one study: refused
    with pytest.raises(InputError, match="more than one effect"):
        select_effects(eff, sel)
