"""Hostile and broken CSV files for ``hccmeta convert`` / ``pool`` (issues 13 and 14).

Every file in tests/bad_csv/ comes with ``<case>.expect``: its first line names the
measure (``# measure: hr``), the others are every line the command must print, exactly:
one line per problem of the rows (``FILE:LINE: column C: message``), or one
``hccmeta <command>: error:`` line for a problem of the whole file.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hccmeta.cli import main
from hccmeta.effects import read_effect_csv
from hccmeta.errors import InputError
from hccmeta.numeric import MAX_SE, MIN_SE

BAD = Path(__file__).parent / "bad_csv"
CASES = sorted(BAD.glob("*.csv"))


def _expect(case: Path) -> tuple[str, list[str]]:
    first, *lines = case.with_suffix(".expect").read_text("utf-8").splitlines()
    return first.removeprefix("# measure: ").strip(), lines


def test_the_corpus_covers_the_issues() -> None:
    names = {p.stem for p in CASES}
    assert {
        "every_problem_listed", "duplicate_studies", "semicolon_separated", "tab_separated",
        "ambiguous_columns", "zero_and_extreme_se", "extreme_variances", "ci_level_too_small",
        "counts_not_integers", "not_utf8", "nul_byte",
    } <= names  # fmt: skip
    for case in CASES:
        assert _expect(case)[1], case.name


@pytest.mark.parametrize("command", ["convert", "pool"])
@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_bad_csv_lists_every_problem(
    case: Path,
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    measure, expected = _expect(case)
    if command == "pool" and measure == "rd":
        pytest.skip("pool takes hr, or, rr or generic")
    shutil.copy(case, tmp_path / case.name)
    before = hashlib.sha256(case.read_bytes()).hexdigest()
    monkeypatch.chdir(tmp_path)
    status = main([command, "--csv", case.name, "--measure", measure])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert "Traceback" not in err
    lines = [line.replace("hccmeta convert:", f"hccmeta {command}:") for line in expected]
    assert err.splitlines() == lines
    assert hashlib.sha256((tmp_path / case.name).read_bytes()).hexdigest() == before


def test_a_directory_as_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "--csv", str(tmp_path), "--measure", "hr"]) == 2
    assert capsys.readouterr().err == (
        f"hccmeta convert: error: {tmp_path}: is a directory, not a CSV file\n"
    )


def test_a_file_name_with_a_newline_is_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a\nb.csv"
    path.write_text("study,yi,sei\nx,1,0\n")
    assert main(["convert", "--csv", str(path), "--measure", "generic"]) == 2
    err = capsys.readouterr().err
    assert err == f"{tmp_path}/a\\nb.csv:2: column sei: standard error 0 must be > 0\n"


# ---- convert never writes sei = 0, vi = 0 or vi = inf ------------------------------------

_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=1e-320, max_value=1e-250).map(repr),
    st.floats(min_value=1e250, max_value=1e308).map(repr),
    st.sampled_from(["0", "-0", "1e-300", "1e300", "0x36", "5_4", "-0_97", "\u0661", "", "NA"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
)


def _cells(row: list[str]) -> str:
    return ",".join(c.replace(",", ".") for c in row)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shape=st.sampled_from(["yi,sei", "yi,vi", "estimate,ci_lower,ci_upper,ci_level"]),
    rows=st.lists(st.lists(_NUMBERS, min_size=4, max_size=4), min_size=1, max_size=4),
    measure=st.sampled_from(["hr", "generic"]),
)
def test_accepted_rows_have_a_usable_standard_error(
    tmp_path: Path, shape: str, rows: list[list[str]], measure: str
) -> None:
    """Whatever the cells, a CSV is refused with located problems or gives effects whose
    SE lies in [1e-12, 1e12] (so vi is neither 0 nor infinite) and a finite estimate."""
    ncol = len(shape.split(","))
    text = f"study,{shape}\n" + "".join(f"s{i},{_cells(r[:ncol])}\n" for i, r in enumerate(rows))
    path = tmp_path / "h.csv"
    path.write_text(text)
    try:
        df = read_effect_csv(path, measure)
    except InputError as exc:
        for line in str(exc).splitlines():
            assert line.startswith(str(path)), line
        return
    for sei, vi, yi in zip(df["sei"], df["vi"], df["yi"], strict=True):
        assert MIN_SE <= sei <= MAX_SE
        assert 0 < vi < math.inf and math.isfinite(yi)
