"""An override of blocking findings, as the list version keeps it (DESIGN §3 rule 6).

A severe finding is accepted only with a reason, and the reason is shown to the next
clinician: in the history, in the diff, on the entry, and on the forms that change the entry.
The version keeps the override as one text (``pll_version.override``, given out as the
Provenance extension ``check-override``), readable as it stands and read back here::

    <reason> (overstyrt: <kind> <code> «<summary>» [<entry> <entry>]; ...)

Each overridden finding keeps its kind and code (what an override names), a short summary a
clinician can read ("Interaksjon Simvastatin + Klaritromycin (Bør unngås)"), and the entries
it concerns, so the note can be shown on exactly those entries. Texts kept before the
summaries and entries were (``<reason> (overstyrt: <kind> <code>; ...)``) read back as the
reason with findings that name no entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pll.domain.checks import DOSE_KINDS, Finding

#: Where the findings begin: the last occurrence, so a reason that quotes it stays a reason.
MARK = " (overstyrt: "
#: A summary is the finding's first clause, at most this long.
SUMMARY_LENGTH = 160
_ITEM = re.compile(r"(\S+) (\S+) «([^«»]*)» \[([^\]]*)\]")
_OLD_ITEM = re.compile(r"(\S+) (\S+)")


@dataclass(frozen=True)
class Overridden:
    """One finding an override accepted."""

    kind: str
    code: str
    summary: str
    entries: tuple[str, ...]


@dataclass(frozen=True)
class Override:
    """The reason given, and the findings it accepted."""

    reason: str
    findings: tuple[Overridden, ...]

    def concerning(self, entry_id: str) -> tuple[Overridden, ...]:
        """The accepted findings that concern one entry."""
        return tuple(f for f in self.findings if entry_id in f.entries)

    @property
    def summaries(self) -> str:
        """What was overridden, in words: "Interaksjon A + B (Bør unngås); CAVE: ..."."""
        return "; ".join(f.summary or f"{f.kind} {f.code}" for f in self.findings)


def summary(finding: Finding) -> str:
    """A finding's first clause: up to its first ": " (an interaction's drugs and relevance),
    "; " or ". " past the first few characters (so "CAVE: ..." keeps its drugs). A dose
    finding's first clause is cut at "; " or ". " only, so the note to the next doctor keeps
    the amount ("Usannsynlig dose av X: 99999 tabletter per døgn")."""
    text = finding.message
    seps = ("; ", ". ") if finding.kind in DOSE_KINDS else (": ", "; ", ". ")
    for sep in seps:
        at = text.find(sep)
        if at > 8:
            text = text[:at]
            break
    text = text.replace("«", '"').replace("»", '"').strip()
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


def describe(reason: str, accepted: Iterable[Finding]) -> str:
    """The override as the version keeps it: the reason, then each finding it accepted."""
    items = "; ".join(
        f"{f.kind.value} {f.code} «{summary(f)}» [{' '.join(f.entries)}]" for f in accepted
    )
    return f"{reason}{MARK}{items})"


def parse(text: str) -> Override:
    """An override text as :func:`describe` wrote it (or as it was written before)."""
    reason, mark, rest = text.rpartition(MARK)
    if not mark or not rest.endswith(")"):
        return Override(text, ())
    body = rest[:-1]
    found = tuple(
        Overridden(kind, code, short, tuple(entries.split()))
        for kind, code, short, entries in _ITEM.findall(body)
    )
    if found:
        return Override(reason, found)
    old = [_OLD_ITEM.fullmatch(part.strip()) for part in body.split(";")]
    if not all(old):
        return Override(text, ())
    return Override(reason, tuple(Overridden(m[1], m[2], "", ()) for m in old if m))


@dataclass(frozen=True)
class KeptOverride:
    """An override as a list version kept it: which version, when, by whom."""

    version: int
    recorded: datetime
    author: str
    override: Override
