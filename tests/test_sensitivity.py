"""hccmeta.sensitivity on the exact-engine analyses (no sampling): the table, each kind
of variant against a direct fit, failures, the CLI, the Dask path and the plot.

References: a leave-one-out row must equal ``run_analysis`` with that study excluded,
and ``hccmeta.pool`` on the remaining effects (metafor's ``leave1out`` refits the model
without the study); the grid row of the default prior must equal the primary analysis
bit for bit (the exact engine is deterministic).
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

import hccmeta as hm
from hccmeta.analyses import Variation, run_analysis
from hccmeta.cli import main
from hccmeta.sensitivity import GROUPS, SENSITIVITY_COLUMNS, Variant, sensitivity
from hccmeta.sensitivity import executor as ex

from .conftest import DefaultResult

OS = "os_tace_plus_sorafenib_vs_sorafenib"
EMPTY = "os_tace_plus_sorafenib_vs_tace_alone"
NUMBERS = ["mean", "median", "sd", "ci_lower", "ci_upper", "p_benefit"]


@pytest.fixture(scope="module")
def os_table(evidence: hm.Evidence) -> pd.DataFrame:
    return sensitivity(OS, evidence, progress=False)


def _row(table: pd.DataFrame, variant: str, estimand: str = "effect") -> pd.Series:
    rows = table[(table["variant"] == variant) & (table["estimand"] == estimand)]
    assert len(rows) == 1, f"{variant}/{estimand}: {len(rows)} rows"
    return rows.iloc[0]


def test_columns_and_primary_first(os_table: pd.DataFrame) -> None:
    assert tuple(os_table.columns) == SENSITIVITY_COLUMNS
    assert os_table.iloc[0]["variant"] == "primary"
    assert os_table.iloc[0]["variant_group"] == "primary"
    assert set(os_table["status"]) <= {"ok", "failed", "no_eligible_records"}
    assert not os_table.duplicated(["variant", "estimand"]).any()
    assert (os_table["description"].str.len() > 10).all()


def test_every_group_present(os_table: pd.DataFrame) -> None:
    assert set(os_table["variant_group"]) == set(GROUPS)


def test_ratio_rows_on_both_scales(os_table: pd.DataFrame) -> None:
    ok = os_table[os_table["status"] == "ok"]
    assert (ok["scale"] == "log_hr").all()
    assert (ok["natural_scale"] == "HR").all()
    np.testing.assert_allclose(ok["natural_median"], np.exp(ok["median"]), rtol=1e-12)
    np.testing.assert_allclose(ok["natural_ci_lower"], np.exp(ok["ci_lower"]), rtol=1e-12)
    np.testing.assert_allclose(ok["natural_ci_upper"], np.exp(ok["ci_upper"]), rtol=1e-12)


def test_leave_one_out_equals_direct_fit(
    evidence: hm.Evidence, os_table: pd.DataFrame, default_result: DefaultResult
) -> None:
    primary = default_result(OS)
    studies = sorted(primary.effects["study"])
    loo = os_table[os_table["variant_group"] == "leave_one_out"]
    assert sorted(loo["variant"]) == [f"loo_{s}" for s in studies]
    for study in studies:
        row = _row(os_table, f"loo_{study}")
        direct = run_analysis(OS, evidence, variation=Variation(exclude_studies=(study,)))
        est = direct.estimates.iloc[0]
        assert [row[c] for c in NUMBERS] == [est[c] for c in NUMBERS]
        assert row["k"] == len(studies) - 1
        # and the plain normal-normal model on the remaining effects
        rest = primary.effects[primary.effects["study"] != study]
        fit = hm.pool(rest["yi"], rest["sei"], measure="hr")
        mu = fit.summary().loc["mu"]
        for col in ("mean", "median", "sd", "ci_lower", "ci_upper"):
            assert row[col] == pytest.approx(mu[col], rel=1e-12)


def test_default_prior_row_equals_primary(os_table: pd.DataFrame) -> None:
    primary = _row(os_table, "primary")
    default = _row(os_table, "tau_halfnormal_0.5")
    assert "the primary analysis's prior" in default["description"]
    assert [default[c] for c in NUMBERS] == [primary[c] for c in NUMBERS]
    other = _row(os_table, "tau_halfnormal_1")
    assert other["ci_upper"] > primary["ci_upper"]  # a wider prior on tau widens the CrI


def test_fixed_effect_is_tau_zero(os_table: pd.DataFrame, default_result: DefaultResult) -> None:
    primary = default_result(OS)
    fit = hm.pool(primary.effects["yi"], primary.effects["sei"], measure="hr", model="fixed")
    row = _row(os_table, "fixed_effect")
    assert row["median"] == pytest.approx(fit.summary().loc["mu", "median"], rel=1e-12)


def test_alternatives_and_subsets(os_table: pd.DataFrame) -> None:
    alt = _row(os_table, "alt_terashima_a_vs_c")
    assert "group C" in alt["description"]
    assert alt["status"] == "ok"
    prospective = _row(os_table, "prospective_only")
    assert prospective["status"] == "no_eligible_records"
    assert math.isnan(prospective["median"])
    skipped = {s["variant"] for s in os_table.attrs["skipped"]}
    assert "full_text_only" in skipped  # both studies are full texts: nothing changes
    assert not (set(os_table["variant"]) & skipped)


def test_power_scaling_rows(os_table: pd.DataFrame) -> None:
    ps = os_table[os_table["variant_group"] == "power_scaling"]
    assert sorted(ps["variant"]) == ["likelihood_power_0.8", "prior_power_0.8"]
    assert ps["psense"].between(0, 1).all()
    assert set(ps["psense_diagnosis"]) <= {
        "ok",
        "prior-data conflict",
        "strong prior / weak likelihood",
    }
    assert os_table.loc[os_table["variant_group"] != "power_scaling", "psense"].isna().all()


def test_failing_variants_are_reported(evidence: hm.Evidence) -> None:
    bad = [
        Variant(
            "tau_normal",
            "prior_tau",
            "tau ~ Normal(0, 1) (not a prior for a standard deviation)",
            Variation(prior_tau=hm.priors.Normal(0.0, 1.0)),
        ),
        Variant("alt_missing", "alternative", "an undeclared mapping", Variation(alternative="x")),
    ]
    table = sensitivity(OS, evidence, groups=["leave_one_out"], extra_variants=bad, progress=False)
    row = _row(table, "tau_normal")
    assert row["status"] == "failed"
    assert row["error"].startswith("InputError: ")
    assert "negative values" in row["error"]
    assert math.isnan(row["median"])
    alt = _row(table, "alt_missing")
    assert alt["status"] == "failed" and "no alternative 'x'" in alt["error"]
    assert (table.loc[table["variant_group"] == "leave_one_out", "status"] == "ok").all()


def test_bugs_propagate_in_process_but_not_past_a_cluster(
    evidence: hm.Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr(ex, "run_analysis", broken)
    with pytest.raises(TypeError, match="a bug"):
        sensitivity(OS, evidence, groups=["leave_one_out"], progress=False)

    class Boundary(ex.Executor):
        runs_exact_fits = True

        def map(self, context, tasks):  # type: ignore[no-untyped-def]
            for i, task in enumerate(tasks):
                try:
                    yield i, ex.run_fit(context, task)
                except Exception as exc:  # noqa: BLE001 - the boundary, as DaskExecutor has it
                    yield i, ex._boundary_failure(exc)

    table = sensitivity(OS, evidence, groups=["leave_one_out"], progress=False, executor=Boundary())
    assert (table["status"] == "failed").all()
    assert table["error"].str.contains("executor: TypeError: a bug").all()


def test_no_eligible_analysis(evidence: hm.Evidence) -> None:
    table = sensitivity(EMPTY, evidence, progress=False)
    assert len(table) == 1
    assert table.iloc[0]["variant"] == "primary"
    assert table.iloc[0]["status"] == "no_eligible_records"


def test_result_in_result_out(
    evidence: hm.Evidence, os_table: pd.DataFrame, default_result: DefaultResult
) -> None:
    primary = default_result(OS)
    table = hm.sensitivity(primary, evidence, progress=False)
    pd.testing.assert_frame_equal(table, os_table)
    with pytest.raises(hm.InputError, match="not a variant"):
        sensitivity(
            run_analysis(OS, evidence, variation=Variation(exclude_studies=("terashima2016",))),
            evidence,
        )


def test_unknown_group(evidence: hm.Evidence) -> None:
    with pytest.raises(hm.InputError, match="unknown variant group"):
        sensitivity(OS, evidence, groups=["priors"])


# --------------------------------------------------------------------------- the CLI
def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["sensitivity", OS, "--json", "--groups", "leave_one_out", "--no-progress"])
    assert status == 0
    out = json.loads(capsys.readouterr().out)
    assert out["analysis"] == OS
    assert out["columns"] == list(SENSITIVITY_COLUMNS)
    variants = [r["variant"] for r in out["rows"]]
    assert variants[0] == "primary"
    assert {"loo_terashima2016", "loo_tace_resistant_n34"} <= set(variants)
    assert all(r["status"] == "ok" for r in out["rows"])


def test_cli_csv(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["sensitivity", OS, "--csv", "--groups", "effects_model", "--no-progress"])
    assert status == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table.columns) == list(SENSITIVITY_COLUMNS)
    assert list(table["variant"]) == ["primary", "fixed_effect"]


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sensitivity", OS, "--groups", "subset", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "prospective_only" in out and "no eligible records" in out


def test_cli_unknown_analysis(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sensitivity", "no_such_analysis", "--json"]) == 2
    err = capsys.readouterr().err
    assert "unknown analysis 'no_such_analysis'" in err
    assert "Traceback" not in err


def test_cli_json_and_csv_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sensitivity", OS, "--json", "--csv"])
    assert info.value.code == 2


# ------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_path_equals_local_path(
    evidence: hm.Evidence, os_table: pd.DataFrame, client: object
) -> None:
    table = sensitivity(OS, evidence, client=client, progress=False)
    pd.testing.assert_frame_equal(table, os_table)
    assert table.attrs["stats"]["fits_via_executor"] == table.attrs["stats"]["fits"] > 0


# --------------------------------------------------------------------------- the plot
def test_plot(os_table: pd.DataFrame) -> None:
    from matplotlib.figure import Figure

    from hccmeta.report.sensitivity_plot import sensitivity_plot

    fig = sensitivity_plot(os_table)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"  # hazard ratios
    labels = {t.get_text().strip() for t in ax.texts}
    # rows are labelled by their descriptions in words, never by variant names
    assert {"primary analysis", "leave out Terashima 2016", "prospective studies only"} <= labels
    assert not any(t.startswith(("loo_", "tau_")) for t in labels)
    assert "Leave one study out" in labels
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    with pytest.raises(hm.InputError, match="no estimand"):
        sensitivity_plot(os_table, estimand="nope")


def test_rows_key_compares_values_not_order_or_types() -> None:
    """The key of a set of effect rows (what fingerprints and effects signatures are
    made of): the same rows in another order, or 12 for 12.0 (an Int64 count for a
    float), give the same key; any changed value, a missing value for a present one, or
    another row gives another."""
    from hccmeta.sensitivity.variants import _rows_key

    rows = pd.DataFrame(
        {
            "effect": pd.array(["a", "b", None], dtype="str"),
            "yi": [0.5, -0.25, np.nan],
            "n_exposed": pd.array([12, None, 30], dtype="Int64"),
            "primary": [True, False, True],
            "time": ["6", "x", None],  # text where a number is expected: NaN
        }
    )
    cols = ["effect", "yi", "n_exposed", "primary", "time"]
    key = _rows_key(rows, cols)
    assert len(key) == 3 and list(key) == sorted(key)
    assert _rows_key(rows.iloc[::-1], cols) == key
    floats = rows.assign(n_exposed=[12.0, np.nan, 30.0], time=[6.0, np.nan, np.nan])
    assert _rows_key(floats, cols) == key
    for change in (
        {"yi": [0.5, -0.25000000000000006, np.nan]},
        {"n_exposed": pd.array([12, 0, 30], dtype="Int64")},
        {"effect": pd.array(["a", "b", "c"], dtype="str")},
        {"primary": [True, True, True]},
    ):
        assert _rows_key(rows.assign(**change), cols) != key, change
    assert _rows_key(rows.iloc[:2], cols) != key
    assert _rows_key(rows, ["unknown"]) == () == _rows_key(rows.iloc[:0], cols)


def test_effects_signature_is_what_the_selections_see(evidence: hm.Evidence) -> None:
    """A conversion variant is skipped when the derivation's effects signature equals
    the primary's: the preferred effects that pass the analyses' selector criteria.
    Wherever it says "the same", the fingerprint (the effects the analysis selects,
    with their numbers) is the same; and it is narrower than "every effect of the
    analysis's measures" (a derivation that changes effects no selector of the analysis
    takes does not count)."""
    from hccmeta.analyses.registry import load_registry
    from hccmeta.effects.table import DeriveOptions
    from hccmeta.sensitivity.conversions import CONVERSIONS
    from hccmeta.sensitivity.variants import effects_signature, fingerprint, measures

    registry = load_registry(evidence.data_dir)
    base = hm.derive_effects(evidence)
    others = [hm.derive_effects(evidence, **DeriveOptions(**opts).as_dict())
              for _, opts, _ in CONVERSIONS]  # fmt: skip
    cols = ["effect", "yi", "sei", "primary"]
    narrower = 0
    for name in registry.names:
        analysis = registry.get(name)
        same_base = fingerprint(analysis, base, Variation())
        sig = effects_signature(analysis, base)
        ms = sorted(measures(analysis))
        broad = base.effects[base.effects["measure"].isin(ms)][cols].reset_index(drop=True)
        for other in others:
            if effects_signature(analysis, other) != sig:
                continue
            assert fingerprint(analysis, other, Variation()) == same_base, name
            rows = other.effects[other.effects["measure"].isin(ms)][cols].reset_index(drop=True)
            narrower += not rows.equals(broad)
    assert narrower > 0
