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

from hccmeta.data.checks import check_study, format_field
from hccmeta.data.evidence import Evidence, Located
from hccmeta.data.provenance import SourceText, verify_study
from hccmeta.data.rules import check_rules, text_findings
from hccmeta.data.schema import Study
from hccmeta.data.yamlio import BadNumber, LineMap, link_problem, read_yaml
from hccmeta.errors import InputError, Problem, StudyDataError, printable

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


#: Extensions of study files (lower case only).
STUDY_SUFFIXES = (".yaml", ".yml")


def _left_alone(name: str) -> bool:
    """Entries of a data directory that are not data: hidden names (``.git``, editor
    files) and documentation (``*.md``)."""
    return name.startswith(".") or name.lower().endswith(".md")


def scan_data_dir(data_dir: Path) -> tuple[list[Path], list[Problem]]:
    """The study files of a data directory, sorted by name, and one problem for every
    other entry that is not left alone (hidden names, ``*.md``, ``analyses.yaml`` and
    the other :data:`NON_STUDY_FILES`): anything that cannot be a study file is an
    error, not a skip. Symbolic links are followed only to files inside the directory.
    """
    if not data_dir.is_dir():
        raise InputError(f"data directory not found: {printable(str(data_dir))}")
    root = data_dir.resolve()
    files: list[Path] = []
    problems: list[Problem] = []
    for path in sorted(data_dir.iterdir()):
        name = path.name
        if name in NON_STUDY_FILES or _left_alone(name):
            continue
        display = _display(path)
        suffix = path.suffix
        if suffix.lower() in STUDY_SUFFIXES and suffix not in STUDY_SUFFIXES:
            problems.append(
                Problem(
                    display,
                    None,
                    None,
                    None,
                    f"the extension '{suffix}' must be lower case: a study file is named "
                    f"<study id>{suffix.lower()}",
                )
            )
            continue
        if suffix not in STUDY_SUFFIXES:
            problems.append(
                Problem(
                    display,
                    None,
                    None,
                    None,
                    "not a study file (study files are named <study id>.yaml; "
                    "documentation is *.md)",
                )
            )
            continue
        refused = link_problem(path, root, display)
        if refused is not None:
            problems.append(refused)
            continue
        files.append(path)
    return files, problems


def study_files(data_dir: Path) -> list[Path]:
    """The study files of a data directory, sorted by name (:func:`scan_data_dir`
    without its problems)."""
    return scan_data_dir(data_dir)[0]


def _display(path: Path) -> str:
    """``path`` relative to the working directory where it lies below it (the last
    component is not resolved: a link is shown as the link)."""
    try:
        return str((path.parent.resolve() / path.name).relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):
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
        elif isinstance(err.get("input"), BadNumber):
            msg = err["input"].reason
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
    files, problems = scan_data_dir(data_dir)
    studies: list[Study] = []
    located: dict[str, Located] = {}
    linemaps: dict[str, tuple[str, LineMap, object]] = {}
    if not files and not problems:
        raise StudyDataError([Problem(_display(data_dir), None, None, None, "no study files")])
    for file in files:
        display = _display(file)
        parsed = read_yaml(file, display)
        if isinstance(parsed, Problem):
            problems.append(parsed)
            continue
        data, lines = parsed
        for f in text_findings(data):
            problems.append(_problem(display, lines, data, f.loc, f.message))
        try:
            study = Study.model_validate(data)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, data, lines, display))
            continue
        for f in [*check_study(study), *check_rules(study, file_stem=file.stem)]:
            problems.append(_problem(display, lines, data, f.loc, f.message))
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
    )
