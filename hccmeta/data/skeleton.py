"""A commented skeleton of a new study file (``hccmeta new-study ID``).

The skeleton is valid YAML. Every value the encoder must supply is the placeholder
``TODO``: ``hccmeta validate`` reports each one that is left ("still TODO: fill in this
value", with its line) and nothing else about it, so the list of problems is the list
of what remains to fill in. Once every ``TODO`` is replaced (a value, or ``null`` where
the source does not report it, for the fields that allow null), the file validates; its
records start empty, with commented examples of a survival and a counts record below.
The comments list the terms the vocabulary of the data directory defines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hccmeta.data.vocabulary import VOCABULARY_FILE, Vocabulary

__all__ = ["study_skeleton"]

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def _terms(vocab: Vocabulary, section: str) -> str:
    return " | ".join(vocab.terms(section))


def study_skeleton(study_id: str, vocabulary: Vocabulary, *, sources: Sequence[str] = ()) -> str:
    """The text of a skeleton study file for ``study_id``.

    Parameters
    ----------
    study_id : str
        The study id (lower case, letters, digits, '_', '.', '-'; e.g. ``smith2024``).
    vocabulary : Vocabulary
        The vocabulary whose terms the comments list.
    sources : sequence of str, keyword-only
        File names of the source texts (default: a ``TODO``).

    Returns
    -------
    str
        YAML text.
    """
    from hccmeta.errors import InputError

    if not _ID.match(study_id) or len(study_id) > 80:
        raise InputError(
            f"study id {study_id!r}: use lower case letters, digits, '_', '.', '-' "
            "(first author + year, e.g. smith2024)"
        )
    src = ", ".join(sources) if sources else "TODO"
    survival = _terms(vocabulary, "endpoint").split(" | ")
    survival = [e for e in survival if vocabulary.endpoint[e].record_type == "survival"]
    counts = [e for e in vocabulary.endpoint if vocabulary.endpoint[e].record_type == "counts"]
    return f"""\
# {study_id}: <what the source is: full text, abstract, news summary; authors, journal>.
# Encoded: <what this file holds>.
# Not reported: <what the source does not print: it stays null, never guessed>.
#
# Written by `hccmeta new-study`. Replace every TODO (study_data/README.md, section 3,
# documents every field; section 7 walks through a whole study). `hccmeta validate
# --sources DIR` lists the TODOs left, with their lines; `hccmeta locate SOURCE TEXT`
# finds a snippet in a source text. Terms (design, setting, regimen, endpoint,
# time_origin, subgroups) come from {VOCABULARY_FILE}: a new one is added there first.
id: {study_id}
citation: TODO  # authors, title, journal year;volume(issue):pages
# label: Surname 2024  # optional: what the report prints; default: first author + year
sources: [{src}]  # file name(s) of the source text(s) in the sources directory
source_kind: TODO  # full_text | abstract | news_summary
design: TODO  # {_terms(vocabulary, "design")}
phase: null  # I | II | III, or null
setting: TODO  # {_terms(vocabulary, "setting")}
country: null  # if the source says
enrolment: null  # or {{start: 'YYYY-MM', end: 'YYYY-MM', follow_up_end: 'YYYY-MM'}} (quoted)
population_size: TODO  # patients in the study population; null if not printed
arms_partition_population: false  # true where the arms' n add up to population_size
provenance:  # snippets with the population size and the enrolment years
  - location: TODO  # e.g. Abstract, Methods
    snippet: TODO  # verbatim text of the source
arms:
  - id: TODO  # e.g. sorafenib_tace (not 'all')
    label: TODO  # the source's name for the arm
    regimen: TODO  # {_terms(vocabulary, "regimen")}
    n: TODO  # patients in the arm; null if not printed
    provenance:
      - {{location: TODO, snippet: TODO}}
characteristics: []  # baseline table rows (README section 3.3)
records: []  # one record per reported result (README section 3.4); examples below
#
# A survival record (endpoints: {" | ".join(survival)};
# time origins: {_terms(vocabulary, "time_origin")}):
#
#  - id: {study_id}.os
#    type: survival
#    endpoint: os
#    time_origin: randomisation
#    analysis: univariate  # univariate | adjusted | descriptive
#    groups:
#      - {{id: exp, arm: <arm id>, median: {{value: 26.7}}}}
#      - {{id: ref, arm: <arm id>, median: {{value: 20.6}}}}
#    contrasts:
#      - exposed: exp
#        reference: ref
#        hr: {{value: 0.76, ci: {{lower: 0.58, upper: 0.99, level: 0.95}}}}
#        p: {{value: 0.04, test: log_rank}}
#    provenance:
#      - {{location: Results, snippet: <verbatim text with every number above>}}
#
# A counts record (endpoints: {" | ".join(counts)}):
#
#  - id: {study_id}.orr
#    type: counts
#    endpoint: objective_response
#    criteria: mRECIST
#    analysis: univariate
#    groups:
#      - {{id: exp, arm: <arm id>, count: 30, proportion: 0.3}}
#      - {{id: ref, arm: <arm id>, count: 20, proportion: 0.2}}
#    provenance:
#      - {{location: Table 2, snippet: <verbatim text>}}
"""
