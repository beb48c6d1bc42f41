"""Loading and validating the study files of a data directory.

Every file is parsed, validated against the schema, cross-checked, and (across files)
checked for duplicate ids; every problem of every file is collected before anything is
returned, so one run of ``hccmeta validate`` lists them all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hccmeta.data.checks import DataWarning, check_study, consistency_findings, format_field
from hccmeta.data.evidence import Evidence, Located, ProvenanceCheck
from hccmeta.data.provenance import SourceText, verify_study
from hccmeta.data.rules import check_rules, text_findings
from hccmeta.data.schema import Study
from hccmeta.data.vocabulary import (
    VOCABULARY_FILE,
    check_terms,
    load_vocabulary,
    vocabulary_path,
)
from hccmeta.data.yamlio import BadNumber, LineMap, link_problem, read_yaml
from hccmeta.errors import InputError, Problem, StudyDataError, printable

#: File names in the data directory that are not study files.
NON_STUDY_FILES = frozenset({"analyses.yaml", VOCABULARY_FILE})

#: Environment variable naming the data directory when none is given.
DATA_ENV = "HCCMETA_DATA"

#: Environment variable listing the source-text directories (separated by
#: ``os.pathsep``, ':' on Linux and macOS) when ``--sources`` is not given.
SOURCES_ENV = "HCCMETA_SOURCES"

#: The placeholder ``hccmeta new-study`` writes where the user must fill in a value.
PLACEHOLDER = "TODO"

PathLike = str | os.PathLike[str]


def default_data_dir() -> Path:
    """The data directory: ``$HCCMETA_DATA``, else ``study_data/`` of the repository."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "study_data"
    if here.is_dir():
        return here
    return Path.cwd() / "study_data"


def _as_dirs(given: PathLike | Sequence[PathLike], origin: str) -> list[Path]:
    dirs = [Path(given)] if isinstance(given, str | os.PathLike) else [Path(p) for p in given]
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"{origin}: sources directory not found: {d}")
    return dirs


def source_dirs(given: PathLike | Sequence[PathLike] | None = None) -> list[Path] | None:
    """The source-text directories the command line uses: ``given`` (``--sources DIR``,
    which may be repeated) if any; else the entries of ``$HCCMETA_SOURCES`` (an
    ``os.pathsep``-separated list, ':' on Linux and macOS); else None (provenance is
    not checked).

    Raises
    ------
    InputError
        If a directory does not exist (naming ``--sources`` or the variable).
    """
    if given is not None and (isinstance(given, str | os.PathLike) or len(given) > 0):
        return _as_dirs(given, "--sources")
    env = [p for p in os.environ.get(SOURCES_ENV, "").split(os.pathsep) if p.strip()]
    if env:
        return _as_dirs(env, SOURCES_ENV)
    return None


def find_source(name: str, dirs: Sequence[Path]) -> Path | None:
    """The first file called ``name`` in ``dirs`` (None if there is none)."""
    for d in dirs:
        path = d / name
        if path.is_file():
            return path
    return None


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
        elif isinstance(err.get("input"), BadNumber):
            msg = err["input"].reason
        elif err["type"] != "value_error" and "input" in err:
            shown = repr(err["input"])
            if len(shown) <= 60 and not isinstance(err["input"], dict | list):
                msg += f" (got {shown})"
        problems.append(_problem(display, lines, data, loc, msg))
    return problems


def _placeholders(data: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Location paths of the values still equal to :data:`PLACEHOLDER`."""
    if isinstance(data, str) and data.strip() == PLACEHOLDER:
        yield loc
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _placeholders(value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _placeholders(value, (*loc, i))


def _under(loc: tuple[str | int, ...], roots: list[tuple[str | int, ...]]) -> bool:
    return any(loc[: len(r)] == r for r in roots)


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def load_studies(
    path: PathLike | None = None,
    *,
    sources: PathLike | Sequence[PathLike] | None = None,
) -> Evidence:
    """Load, validate and cross-check every study file of a data directory.

    Parameters
    ----------
    path : path-like, optional
        The data directory; default ``$HCCMETA_DATA`` or the repository's ``study_data/``.
        It holds the study files, ``vocabulary.yaml`` and ``analyses.yaml``.
    sources : path-like or sequence of path-likes, optional
        Directories of source texts (searched in order; see :func:`source_dirs` for the
        ``$HCCMETA_SOURCES`` variable the CLI reads). When given, every snippet is
        matched against the source text(s) its study names (field ``sources``) and every
        number against its snippets. A study whose source text is not available gets a
        warning (``Evidence.warnings``) and is listed in
        ``Evidence.provenance.unverified``; without ``sources`` nothing is verified
        (``Evidence.provenance.checked`` is False).

    Returns
    -------
    Evidence
        The validated studies with tidy views, the vocabulary and the data hash.

    Raises
    ------
    StudyDataError
        With one :class:`~hccmeta.errors.Problem` per problem, if any file is invalid.
    """
    data_dir = Path(path) if path is not None else default_data_dir()
    files, problems = scan_data_dir(data_dir)
    if not files and not problems:
        raise StudyDataError([Problem(_display(data_dir), None, None, None, "no study files")])
    vocabulary = load_vocabulary(data_dir)
    dirs = _as_dirs(sources, "sources") if sources is not None else None
    warnings: list[DataWarning] = []
    field_lines: dict[str, int] = {}
    studies: list[Study] = []
    located: dict[str, Located] = {}
    linemaps: dict[str, tuple[str, LineMap, object]] = {}
    for file in files:
        display = _display(file)
        parsed = read_yaml(file, display)
        if isinstance(parsed, Problem):
            problems.append(parsed)
            continue
        data, lines = parsed
        todo = list(_placeholders(data))
        for loc in todo:
            problems.append(
                _problem(display, lines, data, loc, f"still {PLACEHOLDER}: fill in this value")
            )
        for f in text_findings(data):
            problems.append(_problem(display, lines, data, f.loc, f.message))
        try:
            study = Study.model_validate(data)
        except ValidationError as exc:
            problems.extend(
                p
                for p, err in zip(
                    _pydantic_problems(exc, data, lines, display),
                    exc.errors(include_url=False),
                    strict=True,
                )
                if not _under(tuple(err["loc"]), todo)
            )
            continue
        if todo:
            continue
        for f in [*check_study(study, vocabulary), *check_rules(study, file_stem=file.stem)]:
            problems.append(_problem(display, lines, data, f.loc, f.message))
        for t in check_terms(study, vocabulary):
            problems.append(_problem(display, lines, data, t.loc, t.message))
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

    check = ProvenanceCheck()
    if dirs is not None:
        check, found = _verify(studies, dirs, linemaps, warnings)
        problems.extend(found)
        if problems:
            raise StudyDataError(problems)

    others = [data_dir / n for n in sorted(NON_STUDY_FILES - {VOCABULARY_FILE})]
    all_files = [*files, *(p for p in others if p.is_file()), vocabulary_path(data_dir)]
    return Evidence(
        studies=tuple(studies),
        data_dir=data_dir,
        data_hash=_hash_files(all_files),
        locations={k: v for k, v in located.items() if not k.startswith("study:")},
        verified_values=check.verified_values if check.checked else None,
        vocabulary=vocabulary,
        provenance=check,
        warnings=tuple(warnings),
        field_lines=field_lines,
    )


def _verify(
    studies: list[Study],
    dirs: list[Path],
    linemaps: dict[str, tuple[str, LineMap, object]],
    warnings: list[DataWarning],
) -> tuple[ProvenanceCheck, list[Problem]]:
    """Verify every study against its own source texts (see :func:`load_studies`)."""
    problems: list[Problem] = []
    texts: dict[Path, SourceText] = {}
    unverified: dict[str, str] = {}
    verified = 0
    shown_dirs = ", ".join(str(d) for d in dirs) or "(no directory)"
    for study in studies:
        display, lines, data = linemaps[study.id]
        own: list[SourceText] = []
        missing = []
        for name in study.sources:
            found = find_source(name, dirs)
            if found is None:
                missing.append(name)
            else:
                if found not in texts:
                    texts[found] = SourceText.read(found)
                own.append(texts[found])
        if not study.sources:
            reason = "the study names no source text (field sources)"
        elif missing:
            reason = f"source text {', '.join(missing)} not found in {shown_dirs}"
        else:
            reason = ""
        if reason:
            unverified[study.id] = reason
            where = _problem(display, lines, data, ("sources",), reason)
            warnings.append(
                DataWarning(
                    display,
                    where.line,
                    None,
                    f"study {study.id}: {reason}: provenance of this study NOT verified",
                    "provenance_unverified",
                    study.id,
                )
            )
        count, failures = verify_study(study, own, check_snippets=not reason)
        if not reason:
            verified += count
        for u in failures:
            problems.append(_problem(display, lines, data, u.loc, u.message))
    used = tuple(sorted(texts))
    return ProvenanceCheck(True, tuple(dirs), used, verified, unverified), problems
