"""The result cache of ``hccmeta report``: fits are reused while their inputs are unchanged.

Every primary result, sensitivity table and the figures and posterior file drawn from
them are stored under a key that is the SHA-256 of everything they are computed from
(:func:`analysis_key`):

- the code: ``hccmeta.__version__``, a hash of every file of the ``hccmeta`` package
  (so that any code change invalidates every entry), the versions of the numerical
  libraries and of Python, and the environment variables that change sampling;
- the analysis's definition in the registry and the seed;
- the vocabulary;
- the *relevant studies*: those with a derived effect that a selector of the analysis
  takes -- of its roles (regimens, factors, for the survival synthesis every survival
  statistic of the arms) or of its alternative contrasts
  (:func:`hccmeta.sensitivity.variants.all_selectors`) --, each with its whole study
  record (every field of its file) and every effect derived from it, with all columns.
  The other variants only leave studies out, take subsets or prefer another
  derivation of the same effect, so they select from these studies too.

An analysis none of whose inputs changed is therefore not refitted: editing one study
refits the analyses (and sensitivity variants) that select an effect of that study and
reuses the rest. Conversion variants derive effects with other options; an option never
makes a study's effect match a selector that its default derivation does not match (the
alternatives switch imputations off, exclude, or change the numbers of a conversion that
also applies by default), so the relevant studies of the default derivation cover them;
a sensitivity table that would break this is not stored (:func:`relevant_studies` is
checked against every derivation the table used). Analyses without eligible records are not
stored (they are cheap, and their explanation looks at every study).

The validated evidence itself (:func:`load_evidence`: the study files parsed, checked
and cross-checked, with their warnings) is stored under the hash of the code and of
every file of the data and source directories, so that a report whose results all come
from the cache does not parse the YAML again; and each YAML file as parsed (kind
``yaml``, under the hash of its text: :func:`hccmeta.data.yamlio.parse_store`), so
that after one study is edited only that file is parsed again (parsing is most of the
time of loading).

Below the analyses, every MCMC fit is stored on its own (kind ``fit``), under the hash
of its inputs -- the model structure, the data and prior values it is given, sampler
settings, seed and start (:func:`hccmeta.models.mcmc.fit_key`) -- and the code version:
:func:`hccmeta.models.mcmc.sample` reads it back instead of compiling and sampling
(:meth:`ResultCache.get_fit`). An analysis whose relevant studies changed is thus
re-planned and its exact fits recomputed, but of its MCMC fits only those whose data
changed are sampled again: a leave-one-out fit without the edited study, or a fit that
does not take the edited number, is reused. A fit is deterministic in these inputs
(the same seed gives bit-identical draws), so a reused fit is the fit.

Entries live in ``.hccmeta-cache/`` at the repository root (beside ``pyproject.toml``,
ignored by git), or in ``$HCCMETA_CACHE``; ``HCCMETA_CACHE=off`` (or ``hccmeta report
--no-cache``) disables the cache; deleting the directory clears it. One file per
entry: a header line (format version, kind, key, SHA-256 of the payload) and the
pickled object. A file that cannot be read, whose header or checksum does not match or
that does not unpickle is a miss (recomputed and overwritten), never an error. After
each report, ``hccmeta report`` removes the entries unused for 30 days and then, while
the cache holds more than ``$HCCMETA_CACHE_MAX_MB`` megabytes (default 1000), the least
recently used ones (:meth:`ResultCache.prune`; reading an entry marks it used). Entries
are written to a temporary file in the same directory and renamed into place, so a run
that is killed leaves no partial entry and two runs at once at worst both compute an
entry (the second rename wins, with the same content). Pickles run code when loaded:
the cache directory must be as trusted as the code (it is the user's own).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from hccmeta.analyses.registry import Analysis, Registry
    from hccmeta.data import Evidence
    from hccmeta.effects.table import DerivedEffects

__all__ = [
    "CACHE_ENV",
    "CACHE_MAX_ENV",
    "DEFAULT_MAX_MB",
    "FORMAT",
    "ResultCache",
    "analysis_key",
    "cache_dir",
    "code_version",
    "evidence_key",
    "load_evidence",
    "load_registry_cached",
    "max_bytes_from_env",
    "relevant_studies",
    "report_key",
    "tree_files",
]

#: Environment variable: a cache directory, or ``off`` to disable the cache.
CACHE_ENV = "HCCMETA_CACHE"
#: Environment variable: the most the cache may hold after a report, in megabytes
#: (10^6 bytes; ``0`` keeps nothing between runs).
CACHE_MAX_ENV = "HCCMETA_CACHE_MAX_MB"
#: Default of :data:`CACHE_MAX_ENV`: a cold report of the seeds writes about 110 MB, an
#: edited one about 10 MB more, and every code change starts a new set of entries.
DEFAULT_MAX_MB = 1000
#: Entries unused for longer than this are removed after a report.
MAX_AGE_DAYS = 30.0
#: Values of :data:`CACHE_ENV` that disable the cache.
OFF_VALUES = frozenset({"off", "0", "no", "false", "none", "disabled"})
#: Version of the entry layout (bumped when what is stored changes shape).
FORMAT = 1
#: Name of the default cache directory (at the repository root).
DIR_NAME = ".hccmeta-cache"
_MAGIC = b"HCCMETA-CACHE\n"
#: Libraries whose version can change a number or a byte of the report.
_LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "arviz",
    "pymc",
    "pytensor",
    "nutpie",
    "numba",
    "matplotlib",
    "h5netcdf",
    "h5py",
    "netCDF4",
    "jinja2",
    "pydantic",
)
#: Environment variables that change what a fit returns.
_ENV_INPUTS = ("HCCMETA_STOCK_NUTPIE",)


def cache_dir() -> Path | None:
    """The cache directory: ``$HCCMETA_CACHE`` (None if it says ``off``), else
    ``.hccmeta-cache/`` at the root of the repository ``hccmeta`` runs from, else
    ``$XDG_CACHE_HOME/hccmeta`` (``~/.cache/hccmeta``)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip():
        if env.strip().lower() in OFF_VALUES:
            return None
        return Path(env).expanduser()
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / DIR_NAME
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "hccmeta"


def max_bytes_from_env() -> int:
    """The cache's size limit in bytes: ``$HCCMETA_CACHE_MAX_MB`` megabytes (a whole
    number, 0 or more), else :data:`DEFAULT_MAX_MB`.

    Raises
    ------
    InputError
        The variable is set to something other than a whole number of megabytes.
    """
    from hccmeta.errors import InputError

    text = os.environ.get(CACHE_MAX_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MB * 1_000_000
    try:
        mb = int(text)
        if mb < 0:
            raise ValueError(mb)
    except ValueError:
        raise InputError(
            f"{CACHE_MAX_ENV}={text!r}: expected the cache's size limit as a whole number "
            f"of megabytes, 0 or more (default {DEFAULT_MAX_MB})"
        ) from None
    return mb * 1_000_000


@lru_cache(maxsize=1)
def _source_hash() -> str:
    """SHA-256 of every file of the ``hccmeta`` package (path and bytes)."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
            continue
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@lru_cache(maxsize=1)
def _library_versions() -> str:
    from importlib import metadata

    versions = []
    for name in _LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    return ";".join(versions)


def code_version() -> str:
    """What the code contributes to every key: ``hccmeta.__version__``, the hash of the
    package's files, the versions of Python and of the numerical libraries, and the
    environment variables that change sampling."""
    import platform

    import hccmeta

    env = ";".join(f"{k}={os.environ.get(k, '')}" for k in _ENV_INPUTS)
    return "|".join(
        [
            f"hccmeta {hccmeta.__version__}",
            _source_hash(),
            f"python {sys.version} {platform.machine()}",
            _library_versions(),
            env,
        ]
    )


def relevant_studies(analysis: Analysis, derived: DerivedEffects) -> list[str]:
    """The studies with a derived effect that one of the selectors of ``analysis`` or of
    its variants takes (:func:`hccmeta.sensitivity.variants.all_selectors`), sorted.
    Where a selection fails (a study matching twice: the analysis will say so), every
    study with an effect of a measure the analysis can take."""
    return _relevant(analysis, derived)[0]


def _relevant(analysis: Analysis, derived: DerivedEffects) -> tuple[list[str], bool]:
    """:func:`relevant_studies`, and whether every selection succeeded."""
    from hccmeta.analyses.select import selected_studies
    from hccmeta.errors import InputError
    from hccmeta.sensitivity.variants import all_selectors, measures

    eff = derived.effects
    if eff.empty:
        return [], True
    found: set[str] = set()
    try:
        for sel in all_selectors(analysis):
            found |= set(selected_studies(eff, sel))
    except InputError:
        rows = eff[eff["measure"].isin(sorted(measures(analysis)))]
        return sorted(set(rows["study"].astype(str))), False
    return sorted(found), True


def relevance_covers(
    analysis: Analysis, derived: DerivedEffects, others: Iterable[DerivedEffects]
) -> bool:
    """Whether the relevant studies of ``analysis`` under ``derived`` include those
    under each of the ``others`` (derivations with other options). A derivation whose
    effects signature (:func:`hccmeta.sensitivity.variants.effects_signature`) equals
    that of ``derived`` gives the same selections, so the same studies, and is not
    selected from (unless a selection under ``derived`` failed)."""
    from hccmeta.sensitivity.variants import effects_signature

    studies, selected = _relevant(analysis, derived)
    covered = set(studies)
    signature = effects_signature(analysis, derived) if selected else None
    for other in others:
        if signature is not None and effects_signature(analysis, other) == signature:
            continue
        if not set(_relevant(analysis, other)[0]) <= covered:
            return False
    return True


def _rows_text(rows: pd.DataFrame) -> str:
    """Every value of ``rows`` (column names included) as exact text (floats by repr)."""
    out = io.StringIO()
    out.write("\x1e".join(map(str, rows.columns)))
    for values in rows.itertuples(index=False, name=None):
        out.write("\n" + "\x1f".join(repr(v) for v in values))
    return out.getvalue()


def analysis_key(
    analysis: Analysis,
    evidence: Evidence,
    derived: DerivedEffects,
    *,
    seed: int,
    memo: dict[str, tuple[str, str]] | None = None,
) -> str | None:
    """The key of an analysis's results (see the module docstring); None when no study
    is relevant to it (nothing is cached then). ``memo`` keeps each study's text (its
    record and its effects) between the keys of one report's analyses."""
    memo = {} if memo is None else memo
    studies = relevant_studies(analysis, derived)
    if not studies:
        return None
    h = hashlib.sha256()

    def add(label: str, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        h.update(f"{label}:{len(data)}:".encode())
        h.update(data)

    add("format", str(FORMAT))
    add("code", code_version())
    add("seed", str(int(seed)))
    add("analysis", analysis.model_dump_json())
    vocab = evidence.vocabulary
    add("vocabulary", vocab.model_dump_json() if vocab is not None else "")
    add("options", repr(derived.options))
    eff = derived.effects
    for sid in studies:
        if sid not in memo:
            rows = eff[eff["study"].astype(str) == sid]
            memo[sid] = (evidence.study(sid).model_dump_json(), _rows_text(rows))
        add("study", memo[sid][0])
        add("effects", memo[sid][1])
    return h.hexdigest()


def _tree_digest(h: Any, label: str, root: Path) -> None:
    """Add every file below ``root`` (path relative to it and SHA-256 of its bytes)."""
    h.update(f"{label}:{root}\0".encode("utf-8", "surrogatepass"))
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(root).as_posix()
            h.update(rel.encode("utf-8", "surrogatepass") + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())


def evidence_key(data_dir: Path, sources: Sequence[Path] | None) -> str:
    """The key of the validated evidence of ``data_dir`` (checked against ``sources``):
    the code, the working directory (messages show paths relative to it), the data
    directory's and the source directories' paths and every file in them, by content."""
    h = hashlib.sha256()
    h.update(f"format:{FORMAT}\0code:{code_version()}\0cwd:{Path.cwd()}\0".encode())
    _tree_digest(h, "data", data_dir.resolve())
    h.update(b"sources:none\0" if sources is None else f"sources:{len(sources)}\0".encode())
    for d in sources or ():
        _tree_digest(h, "source", d.resolve())
    return h.hexdigest()


def report_key(
    data_dir: Path, sources: Sequence[Path] | None, *, out_dir: Path, seed: int, sensitivity: bool
) -> str:
    """The key of a whole report: its evidence's (:func:`evidence_key`: code, data and
    sources), the report directory, the seed and whether it has sensitivity analyses --
    everything the written files depend on."""
    h = hashlib.sha256(evidence_key(data_dir, sources).encode())
    h.update(f"\0out:{out_dir.resolve()}\0seed:{seed}\0sensitivity:{sensitivity}".encode())
    return h.hexdigest()


def tree_files(root: Path) -> dict[str, str]:
    """Every file below ``root``: path relative to it -> SHA-256 of its bytes (empty if
    ``root`` is not a directory)."""
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def load_evidence(
    cache: ResultCache, data: str | Path | None, sources: Sequence[Path] | None
) -> Evidence:
    """:func:`hccmeta.data.load_studies`, its result reused from ``cache`` while no file
    of the data or source directories (and no code) changed: parsing the study files
    is most of the time of a report whose results all come from the cache. Invalid data
    raise as ever (errors are not stored); the cache's counts of results are left as
    they are."""
    from hccmeta.data import load_studies
    from hccmeta.data.loader import default_data_dir
    from hccmeta.data.yamlio import parse_store

    data_dir = Path(data) if data is not None else default_data_dir()
    key = evidence_key(data_dir, sources) if cache.enabled else None
    hit = cache.get("evidence", key, count=False)
    if hit is not None:
        return hit
    with parse_store(cache if cache.enabled else None):  # an unchanged file: not parsed
        evidence = load_studies(data_dir, sources=sources)
    cache.put("evidence", key, evidence, count=False)
    return evidence


def load_registry_cached(cache: ResultCache, data_dir: Path) -> Registry:
    """:func:`hccmeta.analyses.registry.load_registry`, reused from ``cache`` while no
    file of the data directory (and no code) changed (as :func:`load_evidence`)."""
    from hccmeta.analyses.registry import load_registry
    from hccmeta.data.yamlio import parse_store

    # the registry's inputs: the code and the data directory's files (no source texts)
    key = evidence_key(Path(data_dir), None) if cache.enabled else None
    hit = cache.get("registry", key, count=False)
    if hit is not None:
        return hit
    with parse_store(cache if cache.enabled else None):
        registry = load_registry(data_dir)
    cache.put("registry", key, registry, count=False)
    return registry


def sub_key(key: str, *parts: object) -> str:
    """A key derived from ``key`` and ``parts`` (e.g. the sensitivity groups)."""
    return hashlib.sha256(json.dumps([key, *map(str, parts)]).encode()).hexdigest()


@dataclass
class ResultCache:
    """A directory of cache entries (or nothing: ``directory=None`` disables it).

    Attributes
    ----------
    directory : Path or None
        Where the entries are (created on the first write).
    max_bytes : int or None
        What :meth:`prune` leaves at most (None: no limit by size).
    stats : dict
        ``hits``, ``misses``, ``writes``, ``bad`` (unreadable entries, counted as
        misses too) and ``write_errors``.
    """

    directory: Path | None
    max_bytes: int | None = None
    stats: dict[str, int] = field(
        default_factory=lambda: {"hits": 0, "misses": 0, "writes": 0, "bad": 0, "write_errors": 0}
    )
    fits: dict[str, int] = field(default_factory=lambda: {"reused": 0, "sampled": 0})

    @classmethod
    def from_env(cls, *, enabled: bool = True) -> ResultCache:
        """The cache of :func:`cache_dir` (disabled if ``enabled`` is False), limited to
        :func:`max_bytes_from_env` (which raises on a malformed limit)."""
        directory = cache_dir() if enabled else None
        return cls(directory, max_bytes_from_env() if directory is not None else None)

    @property
    def enabled(self) -> bool:
        """Whether entries are read and written."""
        return self.directory is not None

    def _path(self, kind: str, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"v{FORMAT}" / kind / key[:2] / f"{key}.pkl"

    def get(self, kind: str, key: str | None, *, count: bool = True) -> Any | None:
        """The object stored under (``kind``, ``key``), or None (a miss: absent,
        unreadable, or not what was stored). ``count=False`` leaves :attr:`stats` (the
        report's summary counts results) as it is."""
        if self.directory is None or key is None:
            return None
        stats = self.stats if count else dict(self.stats)
        path = self._path(kind, key)
        try:
            blob = path.read_bytes()
        except OSError:
            stats["misses"] += 1
            return None
        value = self._decode(blob, kind, key)
        if value is None:
            stats["bad"] += 1
            stats["misses"] += 1
            return None
        stats["hits"] += 1
        with suppress(OSError):
            os.utime(path)  # last use, for pruning by age
        return value[0]

    @staticmethod
    def _decode(blob: bytes, kind: str, key: str) -> tuple[Any] | None:
        try:
            if not blob.startswith(_MAGIC):
                return None
            end = blob.index(b"\n", len(_MAGIC))
            header = json.loads(blob[len(_MAGIC) : end])
            payload = blob[end + 1 :]
            if (
                not isinstance(header, dict)
                or header.get("format") != FORMAT
                or header.get("kind") != kind
                or header.get("key") != key
                or header.get("sha256") != hashlib.sha256(payload).hexdigest()
            ):
                return None
            return (pickle.loads(payload),)
        except Exception:  # noqa: BLE001 - any damage to an entry is a miss
            return None

    def put(self, kind: str, key: str | None, value: Any, *, count: bool = True) -> None:
        """Store ``value`` under (``kind``, ``key``), atomically; a failure to write (a
        read-only directory, a full disk, an object that does not pickle) is counted
        (unless ``count=False``), never raised."""
        if self.directory is None or key is None:
            return
        stats = self.stats if count else dict(self.stats)
        path = self._path(kind, key)
        tmp: str | None = None
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            header = {
                "format": FORMAT,
                "kind": kind,
                "key": key,
                "sha256": hashlib.sha256(payload).hexdigest(),
                "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + json.dumps(header).encode() + b"\n")
                f.write(payload)
            os.replace(tmp, path)
            tmp = None
            stats["writes"] += 1
        except Exception:  # noqa: BLE001 - the cache never fails a run
            stats["write_errors"] += 1
        finally:
            if tmp is not None:
                with suppress(OSError):
                    os.unlink(tmp)

    # the parse store of hccmeta.data.yamlio.read_yaml: one entry per parsed YAML text

    def get_parsed(self, key: str) -> Any | None:
        """A YAML text parsed by this code version (key: the text's SHA-256), or None."""
        return self.get("yaml", sub_key(code_version(), key), count=False)

    def put_parsed(self, key: str, parsed: Any) -> None:
        """Keep a parsed YAML text (see :meth:`get_parsed`)."""
        self.put("yaml", sub_key(code_version(), key), parsed, count=False)

    # the derivation store of hccmeta.effects.derive_effects: one entry per study and
    # set of options (keyed by the study, the vocabulary and the options), under the code
    # version

    def get_derived(self, key: str) -> Any | None:
        """One study's derived rows (see :func:`hccmeta.effects.derive.derive_store`)
        from this code version, or None."""
        return self.get("derived", sub_key(code_version(), key), count=False)

    def put_derived(self, key: str, rows: Any) -> None:
        """Keep one study's derived rows (see :meth:`get_derived`)."""
        self.put("derived", sub_key(code_version(), key), rows, count=False)

    # the fit store of hccmeta.models.mcmc.sample: one entry per MCMC fit, under its
    # inputs (mcmc.fit_key) and the code version; counted in ``fits``, not ``stats``

    def get_fit(self, key: str) -> Any | None:
        """The MCMC fit stored under ``key`` (:func:`hccmeta.models.mcmc.fit_key`) by
        this code version, or None."""
        fit = self.get("fit", sub_key(code_version(), key), count=False)
        self.fits["reused" if fit is not None else "sampled"] += 1
        return fit

    def put_fit(self, key: str, fit: Any) -> None:
        """Store one MCMC fit (see :meth:`get_fit`)."""
        self.put("fit", sub_key(code_version(), key), fit, count=False)

    def prune(self, *, older_than_days: float = MAX_AGE_DAYS, max_bytes: int | None = None) -> int:
        """Remove entries not used for ``older_than_days``, temporary files of killed
        runs older than a day, and then, while the entries take more than ``max_bytes``
        (default :attr:`max_bytes`; None: no limit), the least recently used ones (a
        hit marks an entry used). Returns how many files were removed."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        limit = self.max_bytes if max_bytes is None else max_bytes
        now = time.time()
        removed = 0
        kept: list[tuple[float, int, Path]] = []
        for path in self._files():
            try:
                st = path.stat()
                age = now - st.st_mtime
                stale_tmp = path.suffix == ".tmp" and age > 86400.0
                if stale_tmp or (path.suffix == ".pkl" and age > older_than_days * 86400.0):
                    path.unlink()
                    removed += 1
                elif path.suffix == ".pkl":
                    kept.append((st.st_mtime, st.st_size, path))
            except OSError:
                continue
        total = sum(size for _, size, _ in kept)
        if limit is None or total <= limit:
            return removed
        # least recently used first; equal times in path order (deterministic)
        for _, size, path in sorted(kept, key=lambda e: (e[0], str(e[2]))):
            if total <= limit:
                break
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
            removed += 1
        return removed

    def _files(self) -> Iterable[Path]:
        assert self.directory is not None
        root = self.directory / f"v{FORMAT}"
        return root.rglob("*") if root.is_dir() else ()
