"""Loading and validating the study files of a data directory.

Every file is parsed, validated against the schema, cross-checked, and (across files)
checked for duplicate ids; every problem of every file is collected before anything is
returned, so one run of ``hccmeta validate`` lists them all.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import ValidationError

from hccmeta.data.checks import DataWarning, check_study, consistency_findings, format_field
from hccmeta.data.evidence import Evidence, Located
from hccmeta.data.provenance import SourceText, verify_study
from hccmeta.data.schema import Study
from hccmeta.data.yamlio import LineMap, read_yaml
from hccmeta.errors import InputError, Problem, StudyDataError

#: File names in the data directory that are not study files.
NON_STUDY_FILES = frozenset({"analyses.yaml"})

#: Environment variable naming the data directory when none is given.
DATA_ENV = "HCCMETA_DATA"


def default_data_dir() -> Path:
    """The data directory: ``$HCCMETA_DATA``, else ``study_data/`` of the repository."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "study_data"
    if here.is_dir():
        return here
    return Path.cwd() / "study_data"


def study_files(data_dir: Path) -> list[Path]:
    """The study files of a data directory, sorted by name."""
    if not data_dir.is_dir():
        raise InputError(f"data directory not found: {data_dir}")
    return sorted(
        p
        for p in data_dir.iterdir()
        if p.suffix in (".yaml", ".yml") and p.name not in NON_STUDY_FILES and p.is_file()
    )


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_PARTS = {"records": "record", "arms": "arm", "characteristics": "characteristic"}
_UNION_TAGS = ("survival", "counts", "summary", "correlation")


def _problem(
    display: str, lines: LineMap, data: object, loc: tuple[str | int, ...], message: str
) -> Problem:
    """A :class:`Problem` at ``loc``: its line, the id it belongs to and the field path.

    ``data`` is the file's content (plain data or the validated :class:`Study`); the id
    is that of the record, arm or characteristic ``loc`` points into, else the study's.
    """
    raw = data.model_dump() if isinstance(data, Study) else data
    kind, ident, inner = "study", None, loc
    if isinstance(raw, dict):
        sid = raw.get("id")
        ident = sid if isinstance(sid, str) else None
        if len(loc) >= 2 and loc[0] in _PARTS and isinstance(loc[1], int):
            kind = _PARTS[str(loc[0])]
            items = raw.get(str(loc[0]))
            idx = loc[1]
            item = items[idx] if isinstance(items, list) and 0 <= idx < len(items) else None
            item_id = item.get("id") if isinstance(item, dict) else None
            ident = item_id if isinstance(item_id, str) else f"{loc[0]}[{idx}]"
            inner = loc[2:]
            if inner and inner[0] in _UNION_TAGS:
                inner = inner[1:]
        elif loc[:2] == ("risk_of_bias", "assessments") and len(loc) >= 3:
            kind, pos = "assessment", loc[2]
            rob = raw.get("risk_of_bias")
            items = rob.get("assessments") if isinstance(rob, dict) else None
            item = (
                items[pos]
                if isinstance(items, list) and isinstance(pos, int) and 0 <= pos < len(items)
                else None
            )
            item_id = item.get("id") if isinstance(item, dict) else None
            ident = item_id if isinstance(item_id, str) else f"risk_of_bias.assessments[{pos}]"
            inner = loc[3:]
    return Problem(display, lines.line(loc), ident, format_field(inner) or None, message, kind)


def _pydantic_problems(
    exc: ValidationError, data: object, lines: LineMap, display: str
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not in the schema; check its spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "union_tag_invalid":
            loc = (*loc, "type")
        elif err["type"] != "value_error" and "input" in err:
            shown = repr(err["input"])
            if len(shown) <= 60 and not isinstance(err["input"], dict | list):
                msg += f" (got {shown})"
        problems.append(_problem(display, lines, data, loc, msg))
    return problems


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def load_studies(
    path: str | os.PathLike[str] | None = None,
    *,
    sources: str | os.PathLike[str] | None = None,
) -> Evidence:
    """Load, validate and cross-check every study file of a data directory.

    Parameters
    ----------
    path : path-like, optional
        The data directory; default ``$HCCMETA_DATA`` or the repository's ``study_data/``.
    sources : path-like, optional
        A directory of source texts: when given, every snippet and number is also
        verified against them (``Evidence.verified_values`` counts the numbers).

    Returns
    -------
    Evidence
        The validated studies with tidy views and the data hash.

    Raises
    ------
    StudyDataError
        With one :class:`~hccmeta.errors.Problem` per problem, if any file is invalid.
    """
    data_dir = Path(path) if path is not None else default_data_dir()
    files = study_files(data_dir)
    problems: list[Problem] = []
    studies: list[Study] = []
    located: dict[str, Located] = {}
    linemaps: dict[str, tuple[str, LineMap, object]] = {}
    warnings: list[DataWarning] = []
    field_lines: dict[str, int] = {}
    if not files:
        raise StudyDataError([Problem(_display(data_dir), None, None, None, "no study files")])
    for file in files:
        display = _display(file)
        parsed = read_yaml(file, display)
        if isinstance(parsed, Problem):
            problems.append(parsed)
            continue
        data, lines = parsed
        try:
            study = Study.model_validate(data)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, data, lines, display))
            continue
        for f in check_study(study):
            problems.append(_problem(display, lines, data, f.loc, f.message))
        for i, rec in enumerate(study.records):
            for k, _ in enumerate(getattr(rec, "contrasts", [])):
                line = lines.line(("records", i, "contrasts", k, "p"))
                if line is not None:
                    field_lines[f"{rec.id}:contrasts[{k}].p"] = line
        for w in consistency_findings(study):
            where = _problem(display, lines, data, w.loc, w.message)
            warnings.append(
                DataWarning(display, where.line, where.record, w.message, w.check, study.id)
            )
        # ids unique across files
        owners: list[tuple[str, str, tuple[str | int, ...]]] = [("study", study.id, ())]
        owners += [("record", r.id, ("records", i)) for i, r in enumerate(study.records)]
        owners += [
            ("characteristic", c.id, ("characteristics", i))
            for i, c in enumerate(study.characteristics)
        ]
        for kind, oid, loc in owners:
            key = oid if kind != "study" else f"study:{oid}"
            if key in located:
                first = located[key]
                problems.append(
                    _problem(
                        display,
                        lines,
                        data,
                        (*loc, "id"),
                        f"duplicate {kind} id '{oid}' (first defined in {first.file}:{first.line})",
                    )
                )
            else:
                located[key] = Located(display, lines.line((*loc, "id")) or 1, study.id)
        linemaps[study.id] = (display, lines, data)
        studies.append(study)
        if study.risk_of_bias is None:
            warnings.append(
                DataWarning(
                    display,
                    lines.line(("id",)),
                    None,
                    f"study {study.id}: no risk_of_bias block: its results count as not "
                    "assessed for risk of bias (the certainty of evidence is rated down for it)",
                    "risk_of_bias_missing",
                    study.id,
                )
            )
    if problems:
        raise StudyDataError(problems)

    verified: int | None = None
    if sources is not None:
        src_dir = Path(sources)
        if not src_dir.is_dir():
            raise InputError(f"sources directory not found: {src_dir}")
        texts = [SourceText.read(p) for p in sorted(src_dir.iterdir()) if p.is_file()]
        if not texts:
            raise InputError(f"no source texts in {src_dir}")
        verified = 0
        for study in studies:
            count, failures = verify_study(study, texts)
            verified += count
            display, lines, data = linemaps[study.id]
            for u in failures:
                problems.append(_problem(display, lines, data, u.loc, u.message))
        if problems:
            raise StudyDataError(problems)

    all_files = [*files, *(data_dir / n for n in NON_STUDY_FILES if (data_dir / n).is_file())]
    return Evidence(
        studies=tuple(studies),
        data_dir=data_dir,
        data_hash=_hash_files(all_files),
        locations={k: v for k, v in located.items() if not k.startswith("study:")},
        verified_values=verified,
        warnings=tuple(warnings),
        field_lines=field_lines,
    )
