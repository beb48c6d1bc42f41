"""``read_effect_csv`` and ``hccmeta convert``: every input shape and every bad input."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest

from hccmeta.cli import main
from hccmeta.effects import read_effect_csv
from hccmeta.errors import InputError

#: Hand-worked values are written to 6 decimals.
HAND_TOL = 5e-6


def _csv(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- the four shapes ---------------------------------------------------------------------


def test_yi_sei(tmp_path: Path) -> None:
    df = read_effect_csv(_csv(tmp_path, "study,yi,sei\na,0.5,0.2\nb,-0.1,0.3\n"), "generic")
    assert list(df.columns) == ["study", "yi", "vi", "sei"]
    assert df["study"].tolist() == ["a", "b"]
    assert df["vi"].tolist() == pytest.approx([0.04, 0.09])
    assert df.attrs["shape"] == "yi,sei"


def test_yi_vi(tmp_path: Path) -> None:
    df = read_effect_csv(_csv(tmp_path, "study,yi,vi\na,0.5,0.04\n"), "hr")
    assert df["sei"].tolist() == pytest.approx([0.2])
    assert df.attrs["measure"] == "log_hr"


def test_yi_sei_vi_consistent(tmp_path: Path) -> None:
    # what `hccmeta convert` writes can be read back
    df = read_effect_csv(_csv(tmp_path, "study,yi,vi,sei\na,0.5,0.04,0.2\n"), "generic")
    assert df["sei"].tolist() == pytest.approx([0.2])


def test_estimate_ci_ratio(tmp_path: Path) -> None:
    # Terashima group C: HR 5.805 (2.684-12.553) -> ln 5.805 = 1.758720, SE = 0.393541;
    # Child-Pugh B at an explicit 0.95 level: 1.098279, SE = 0.361095
    text = (
        "study,estimate,ci_lower,ci_upper,ci_level\n"
        "C,5.805,2.684,12.553,\n"
        "CPB,2.999,1.478,6.087,0.95\n"
    )
    df = read_effect_csv(_csv(tmp_path, text), "hr")
    assert df["yi"].tolist() == pytest.approx([1.758720, 1.098279], abs=HAND_TOL)
    assert df["sei"].tolist() == pytest.approx([0.393541, 0.361095], abs=HAND_TOL)


def test_estimate_ci_level(tmp_path: Path) -> None:
    # HR 1 (0.5-2) at 90%: SE = ln 4 / (2 x 1.644854) = 0.421401
    df = read_effect_csv(
        _csv(tmp_path, "study,estimate,ci_lower,ci_upper,ci_level\na,1,0.5,2,0.90\n"), "or"
    )
    assert df["sei"].iloc[0] == pytest.approx(math.log(4) / (2 * 1.6448536), abs=HAND_TOL)


def test_estimate_ci_generic_is_additive(tmp_path: Path) -> None:
    df = read_effect_csv(
        _csv(tmp_path, "study,estimate,ci_lower,ci_upper\na,-0.2,-0.4,0\n"), "generic"
    )
    assert df["yi"].iloc[0] == -0.2
    assert df["sei"].iloc[0] == pytest.approx(0.4 / (2 * 1.959964), abs=HAND_TOL)


@pytest.mark.parametrize(
    ("measure", "yi", "vi"),
    [
        # n = 34 study, response 13/22 vs 0/12, 0.5 added to every cell (see
        # tests/test_effects_formulas.py for the arithmetic)
        ("or", 3.570274, 2.259337),
        ("rr", 2.725290, 1.953673),
        ("rd", 0.548495, 0.013386),
    ],
)
def test_counts(tmp_path: Path, measure: str, yi: float, vi: float) -> None:
    df = read_effect_csv(
        _csv(tmp_path, "study,events_t,n_t,events_c,n_c\nn34,13,22,0,12\n"), measure
    )
    assert df["yi"].iloc[0] == pytest.approx(yi, abs=HAND_TOL)
    assert df["vi"].iloc[0] == pytest.approx(vi, abs=HAND_TOL)
    assert df.attrs["continuity_corrected"] == ["n34"]


def test_whitespace_bom_blank_lines_and_extra_columns(tmp_path: Path) -> None:
    text = "\ufeff Study , YI , SEI ,note\n\n a ,0.5, 0.2,first\n\n"
    df = read_effect_csv(_csv(tmp_path, text), "generic")
    assert df["study"].tolist() == ["a"]


# ---- bad input: InputError naming the file, row and column -------------------------------

BAD: list[tuple[str, str, str, str]] = [
    # (case, measure, csv text, expected fragments separated by '|')
    ("missing study column", "generic", "yi,sei\n0.5,0.2\n", "missing column 'study'"),
    ("missing sei/vi", "generic", "study,yi\na,0.5\n", "missing column 'sei' or 'vi'"),
    ("missing ci_upper", "hr", "study,estimate,ci_lower\na,2,1\n", "missing column 'ci_upper'"),
    ("missing n_c", "or", "study,events_t,n_t,events_c\na,1,2,3\n", "missing column 'n_c'"),
    ("no shape", "hr", "study,foo\na,1\n", "missing columns"),
    (
        "non-numeric",
        "generic",
        "study,yi,sei\na,0.5,0.2\nb,x1,0.2\n",
        ":3: column yi: 'x1' is not a number",
    ),
    ("NaN", "generic", "study,yi,sei\na,NaN,0.2\n", ":2: column yi: missing value 'NaN'"),
    ("NA", "generic", "study,yi,sei\na,0.5,NA\n", ":2: column sei: missing value 'NA'"),
    ("empty cell", "generic", "study,yi,sei\na,,0.2\n", ":2: column yi: empty cell"),
    (
        "infinite",
        "generic",
        "study,yi,sei\na,inf,0.2\n",
        ":2: column yi: 'inf' is not a finite number",
    ),
    (
        "zero SE",
        "generic",
        "study,yi,sei\na,0.5,0\n",
        ":2: column sei: standard error 0 must be > 0",
    ),
    (
        "negative SE",
        "generic",
        "study,yi,sei\na,0.5,-0.1\n",
        ":2: column sei: standard error -0.1 must be > 0",
    ),
    ("zero variance", "generic", "study,yi,vi\na,0.5,0\n", ":2: column vi: variance 0 must be > 0"),
    ("negative variance", "generic", "study,yi,vi\na,0.5,-1\n", ":2: column vi: variance -1 must"),
    (
        "sei vi disagree",
        "generic",
        "study,yi,vi,sei\na,0.5,0.5,0.2\n",
        ":2: column vi: vi = 0.5 disagrees",
    ),
    (
        "reversed CI",
        "hr",
        "study,estimate,ci_lower,ci_upper\na,2,3,1\n",
        ":2: column ci_lower: CI reversed",
    ),
    (
        "equal CI",
        "generic",
        "study,estimate,ci_lower,ci_upper\na,2,2,2\n",
        ":2: column ci_lower: CI reversed or empty",
    ),
    (
        "estimate outside CI",
        "hr",
        "study,estimate,ci_lower,ci_upper\na,5,1,3\n",
        ":2: column estimate: estimate 5 lies outside its CI",
    ),
    (
        "non-positive ratio",
        "hr",
        "study,estimate,ci_lower,ci_upper\na,-0.5,-1,0.2\n",
        ":2: column estimate: -0.5 is not positive",
    ),
    (
        "zero lower bound",
        "rr",
        "study,estimate,ci_lower,ci_upper\na,0.5,0,2\n",
        ":2: column ci_lower: 0 is not positive",
    ),
    (
        "level 95",
        "hr",
        "study,estimate,ci_lower,ci_upper,ci_level\na,2,1,4,95\n",
        ":2: column ci_level: 95 looks like a percentage|0.95",
    ),
    (
        "level 1",
        "hr",
        "study,estimate,ci_lower,ci_upper,ci_level\na,2,1,4,1\n",
        ":2: column ci_level: confidence level 1 must lie in (0, 1)",
    ),
    (
        "events above n",
        "or",
        "study,events_t,n_t,events_c,n_c\na,13,12,0,12\n",
        ":2: column events_t: events_t 13 exceeds n_t 12",
    ),
    (
        "control events above n",
        "rr",
        "study,events_t,n_t,events_c,n_c\na,1,12,14,12\n",
        ":2: column events_c: events_c 14 exceeds n_c 12",
    ),
    (
        "negative count",
        "or",
        "study,events_t,n_t,events_c,n_c\na,-1,12,0,12\n",
        ":2: column events_t: count -1 is negative",
    ),
    (
        "fractional count",
        "or",
        "study,events_t,n_t,events_c,n_c\na,1.5,12,0,12\n",
        ":2: column events_t: count events_t '1.5' is not a whole number",
    ),
    (
        "zero n",
        "or",
        "study,events_t,n_t,events_c,n_c\na,0,0,0,12\n",
        ":2: column n_t: group size 0",
    ),
    ("counts for hr", "hr", "study,events_t,n_t,events_c,n_c\na,1,12,0,12\n", "not measure 'hr'"),
    ("empty study", "generic", "study,yi,sei\n,0.5,0.2\n", ":2: column study: empty study label"),
    (
        "ragged row",
        "generic",
        "study,yi,sei\na,0.5\n",
        ":2: 2 cells, but the header (line 1) has 3 columns",
    ),
    ("duplicate column", "generic", "study,yi,yi,sei\na,1,1,1\n", "duplicate column 'yi'"),
    ("header only", "generic", "study,yi,sei\n", "empty file"),
    ("empty file", "generic", "", "empty file"),
    ("blank file", "generic", "\n\n  \n", "empty file"),
]


@pytest.mark.parametrize(("case", "measure", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_read_effect_csv_bad_input(
    tmp_path: Path, case: str, measure: str, text: str, expected: str
) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(InputError) as exc:
        read_effect_csv(path, measure)
    message = str(exc.value)
    assert message.startswith(str(path)), message
    for fragment in expected.split("|"):
        assert fragment in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_effect_csv(tmp_path / "nope.csv", "hr")


def test_unknown_measure(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="measure = 'smd'"):
        read_effect_csv(_csv(tmp_path, "study,yi,sei\na,1,1\n"), "smd")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"study,yi,sei\n\xff\xfe,1,1\n")
    with pytest.raises(InputError, match=r"bin.csv:2: not UTF-8 text: invalid byte 0xff"):
        read_effect_csv(path, "generic")


# ---- the command line ------------------------------------------------------------------


def test_convert_cli_prints_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, "study,estimate,ci_lower,ci_upper\nC,5.805,2.684,12.553\n")
    status = main(["convert", "--csv", str(path), "--measure", "hr"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns) == ["study", "yi", "vi", "sei"]
    assert df["yi"].iloc[0] == pytest.approx(1.758720, abs=HAND_TOL)
    assert df["sei"].iloc[0] == pytest.approx(0.393541, abs=HAND_TOL)


def test_convert_output_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, "study,events_t,n_t,events_c,n_c\nx,13,22,0,12\ny,5,10,3,10\n")
    assert main(["convert", "--csv", str(path), "--measure", "or"]) == 0
    out = _csv(tmp_path, capsys.readouterr().out, "out.csv")
    again = read_effect_csv(out, "or")
    assert again["yi"].tolist() == pytest.approx([3.570274, 0.847298], abs=HAND_TOL)


@pytest.mark.parametrize(("case", "measure", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_convert_cli_bad_input_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    measure: str,
    text: str,
    expected: str,
) -> None:
    path = _csv(tmp_path, text)
    status = main(["convert", "--csv", str(path), "--measure", measure])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert "Traceback" not in err
    # a problem of the whole file: one message; problems of rows: one line each
    assert err.startswith(("hccmeta convert: error: ", f"{path}:")), err
    for fragment in expected.split("|"):
        assert fragment in err, err


def test_convert_cli_unknown_measure_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, "study,yi,sei\na,1,1\n")
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--csv", str(path), "--measure", "smd"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
