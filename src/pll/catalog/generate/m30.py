"""Writing the M30 document: namespaces, coded values, the ``Oppf…`` entry around each
entity, and a writer that streams entries to the output and counts them.

What goes into an entry is chosen elsewhere (:mod:`.drugs`, :mod:`.substances`,
:mod:`.interactions`); this module knows only the document's shape (``docs/fest-m30.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO
from xml.sax.saxutils import escape, quoteattr

M30 = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
FORSKRIVNING = "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01"
OID = "2.16.578.1.12.4.1.1."
PROGRESS_EVERY = 1000


@dataclass
class Writer:
    """Streams the document to ``out``, counting entries per kind and calling ``progress``
    every :data:`PROGRESS_EVERY` entries and once at the end."""

    out: IO[bytes]
    progress: Callable[[int], None] | None
    #: the ids of the ``Oppf…`` entries; drawn as each entry is written, after its content,
    #: so that a seed's document does not depend on how the writing is arranged
    new_id: Callable[[], str]
    entries: int = 0
    reported: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def raw(self, text: str) -> None:
        self.out.write(text.encode("utf-8"))

    def entry(self, kind: str, text: str) -> None:
        self.raw(text)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.entries += 1
        if self.progress is not None and self.entries % PROGRESS_EVERY == 0:
            self.progress(self.entries)
            self.reported = self.entries

    def done(self) -> None:
        if self.progress is not None and self.reported != self.entries:
            self.progress(self.entries)

    def oppf(self, kind: str, tidspunkt: str, body: str) -> str:
        """An ``Oppf{kind}`` catalogue entry (active) around an entity's ``body``."""
        return (
            f"    <Oppf{kind}>\n"
            f"      <Id>{self.new_id()}</Id>\n"
            f"      <Tidspunkt>{tidspunkt}</Tidspunkt>\n"
            '      <Status V="A" DN="Aktiv oppføring"/>\n'
            f"{body}"
            f"    </Oppf{kind}>\n"
        )


def cv(tag: str, value: str, system: str, display: str) -> str:
    """A coded value in a FEST code system (``kodeverk`` number)."""
    return f"<{tag} V={quoteattr(value)} S={quoteattr(OID + system)} DN={quoteattr(display)}/>"


def cs(tag: str, value: str, display: str) -> str:
    """A coded value whose system the schema fixes."""
    return f"<{tag} V={quoteattr(value)} DN={quoteattr(display)}/>"


def el(tag: str, text: str) -> str:
    return f"<{tag}>{escape(text)}</{tag}>"


def entity(tag: str, lines: list[str], ns: str = FORSKRIVNING) -> str:
    """An entity element holding ``lines``, indented as inside an ``Oppf…`` entry."""
    opening = f'      <{tag} xmlns="{ns}">\n' if ns else f"      <{tag}>\n"
    inner = "".join(f"        {line}\n" for line in lines)
    return f"{opening}{inner}      </{tag}>\n"
