"""Reading a FEST extract (catalogue message M30) as a stream of catalogue entries.

The structure is in ``docs/fest-m30.md`` (from the medicines agency's M30 information model
v2.5 and FEST implementation guide v3.5, in ``shared/reference/fest``): a ``FEST`` root in a
KITH ``m30`` namespace, ``Kat…`` catalogues of ``Oppf…`` entries, each with ``Id``,
``Tidspunkt`` and ``Status`` (kodeverk 7446: ``A`` active, ``U`` expired) around the entity,
and coded values as attributes ``V`` (value), ``S`` (code system) and ``DN`` (display).

The parser keeps one ``Oppf…`` entry in memory at a time and drops it once read, so memory
does not grow with the file. It refuses DTDs and entity declarations (``defusedxml``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError
from zoneinfo import ZoneInfo

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

from pll.domain.checks import SUBSTANCE
from pll.domain.errors import InvalidInput

#: KITH namespaces of FEST: ``…/eresept/m30/<date>`` around ``…/eresept/forskrivning/<date>``
#: entities; the date differs between releases (2013-10-08 in the model, 2014-12-01 in use).
NAMESPACE = re.compile(r"http://www\.kith\.no/xmlstds/eresept/(m30|forskrivning)/\d{4}-\d{2}-\d{2}")

#: Every catalogue M30 defines [M30 model §4.1]; the first five are the ones PLL reads.
USED = (
    "KatLegemiddelpakning",
    "KatLegemiddelMerkevare",
    "KatVirkestoff",
    "KatLegemiddelVirkestoff",
    "KatInteraksjon",
)
KNOWN = {
    *USED,
    "KatLegemiddeldose",
    "KatHandelsvare",
    "KatKodeverk",
    "KatVarselSlv",
    "KatByttegruppe",
    "KatRefusjon",
    "KatVilkar",
    "KatDiagnose",
    "KatStrDosering",
}


OSLO = ZoneInfo("Europe/Oslo")


class FestError(InvalidInput):
    """The extract is not a FEST M30 file PLL can import; nothing was changed."""


@dataclass(frozen=True)
class Drug:
    """A package, brand or generic (``LegemiddelVirkestoff``) as the catalogue lists it."""

    kind: str  #: package, brand or generic
    id: str
    code: str  #: the package's Varenr, else the FEST id
    name: str
    atc: str | None
    rx_group: str | None
    form: str | None
    active: bool
    exchange_group: str | None = None
    brand: str | None = None
    #: what it names: strengths (VirkestoffMedStyrke) or substances (RefVirkestoff)
    refs: tuple[str, ...] = ()
    #: a brand's Reseptgyldighet (ISO 8601 duration), see :func:`validity`
    validity: str | None = None
    #: a package's Pakningsinfo as a doctor reads it ("Boks, 100 stk"), see :func:`pack`
    pack: str | None = None
    pack_amount: float | None = None
    pack_unit: str | None = None


@dataclass(frozen=True)
class Substance:
    id: str
    name: str
    atc: str | None = None


@dataclass(frozen=True)
class Strength:
    id: str
    substance: str
    #: Styrke per StyrkeNevner, decimal comma: "2,5 mg", "1 mg/ml", "0,1 mg/dose"
    label: str | None = None


@dataclass(frozen=True)
class Interaction:
    id: str
    relevance: str
    consequence: str
    mechanism: str
    handling: str
    #: the two substance groups: (ATC code, substance name) pairs
    groups: tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class NotAssessed:
    atc: str


Item = Drug | Substance | Strength | Interaction | NotAssessed


@dataclass
class Header:
    extracted_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)


def words(name: str) -> list[str]:
    """The searchable words of a name in order: lower case, accents removed (é → e; æ, ø
    stay), split at anything not a letter, digit or ``_`` ("Tab 2,5 mg" → tab, 2, 5, mg)."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c)
    )
    return [w[:64] for w in re.split(r"[^\w]+", plain) if w]


def tokens(name: str) -> set[str]:
    """The searchable words of a name, as a set (see :func:`words`)."""
    return set(words(name))


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return None, tag


def _text(elem: Element | None) -> str | None:
    if elem is None or elem.text is None:
        return None
    value = elem.text.strip()
    return value or None


class _Entry:
    """One ``Oppf…`` element with namespace-free lookups."""

    def __init__(self, elem: Element, where: str, today: date) -> None:
        self.elem = elem
        self.where = where
        self.today = today

    def child(self, parent: Element, name: str) -> Element | None:
        for c in parent:
            if _local(c.tag)[1] == name:
                return c
        return None

    def children(self, parent: Element, name: str) -> list[Element]:
        return [c for c in parent if _local(c.tag)[1] == name]

    def text(self, parent: Element, name: str) -> str | None:
        return _text(self.child(parent, name))

    def need(self, parent: Element, name: str, longest: int = 64) -> str:
        value = self.text(parent, name)
        if value is None:
            raise FestError(f"{self.where}: {_local(parent.tag)[1]} has no {name}.", self.where)
        if name in ("Id", "Varenr", "RefVirkestoff") and len(value) > longest:
            raise FestError(
                f"{self.where}: {name} is longer than {longest} characters.", self.where
            )
        return value

    def code(self, parent: Element, name: str) -> str | None:
        found = self.child(parent, name)
        value = found.get("V") if found is not None else None
        if value is not None and len(value) > 16:
            raise FestError(
                f"{self.where}: the {name} code {value[:20]!r}… is too long.", self.where
            )
        return value


def read(
    stream: IO[bytes], today: date, progress: Callable[[int], None] | None = None
) -> tuple[Header, Iterator[Item]]:
    """Parse ``stream``; returns the header (filled as the stream is read: ``HentetDato`` and
    counts) and an iterator of catalogue items. A package deregistered or temporarily off
    the market by ``today`` is not active. Raises :class:`FestError` on anything that is
    not a FEST extract, with the line where it went wrong."""
    header = Header()
    return header, _items(stream, header, today, progress)


def _items(  # noqa: PLR0912 - one streaming loop over the catalogues
    stream: IO[bytes], header: Header, today: date, progress: Callable[[int], None] | None
) -> Iterator[Item]:
    stack: list[Element] = []
    catalogue: str | None = None
    events = iterparse(stream, events=("start", "end"), forbid_dtd=True)
    try:
        for event, elem in events:
            ns, name = _local(elem.tag)
            if event == "start":
                if not stack:
                    if name != "FEST" or ns is None or not NAMESPACE.fullmatch(ns):
                        raise FestError(
                            f"This is not a FEST M30 extract: the root is {elem.tag!r}, "
                            "expected FEST in a http://www.kith.no/xmlstds/eresept/m30/… "
                            "namespace.",
                            "FEST",
                        )
                elif len(stack) == 1 and name.startswith("Kat"):
                    if name not in KNOWN:
                        raise FestError(f"Unknown FEST catalogue {name!r}.", name)
                    catalogue = name
                stack.append(elem)
                continue
            stack.pop()
            depth = len(stack)
            if depth == 1 and name == "HentetDato":
                header.extracted_at = _datetime(_text(elem), "HentetDato")
            elif depth == 2 and catalogue in USED and name.startswith("Opp"):
                where = f"{catalogue}/{name}[{header.counts.get(catalogue, 0) + 1}]"
                for item in _entry(_Entry(elem, where, today), catalogue):
                    header.counts[type(item).__name__] = (
                        header.counts.get(type(item).__name__, 0) + 1
                    )
                    yield item
                header.counts[catalogue] = header.counts.get(catalogue, 0) + 1
                if progress is not None:
                    progress(stream.tell() if stream.seekable() else 0)
            elif depth == 1 and name.startswith("Kat"):
                catalogue = None
            if depth >= 1 and depth <= 2:
                stack[-1].remove(elem)
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden):
        raise FestError(
            "The FEST file declares a DTD or entities; FEST extracts have none, and PLL does "
            "not read them."
        ) from None
    except ParseError as exc:
        line, column = exc.position
        raise FestError(
            f"The FEST file is not well-formed XML at line {line}, column {column} "
            f"(truncated or damaged?): {exc}.",
            f"line {line}",
        ) from None
    if stack:
        raise FestError("The FEST file ends before its root element closes (truncated).")


def _datetime(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FestError(f"{where}: {value!r} is not a date and time.", where) from None
    # FEST writes Norwegian local time without an offset.
    return moment if moment.tzinfo else moment.replace(tzinfo=OSLO)


def _entry(e: _Entry, catalogue: str) -> Iterator[Item]:  # noqa: PLR0912 - one per kind
    status = e.code(e.elem, "Status")
    if status not in ("A", "U"):
        raise FestError(
            f"{e.where}: Status must be A or U (kodeverk 7446), got {status!r}.", e.where
        )
    if status == "U":
        return  # an expired entry of an incremental extract: nothing to import
    inner = next((c for c in e.elem if _local(c.tag)[1] not in ("Id", "Tidspunkt", "Status")), None)
    if inner is None:
        raise FestError(f"{e.where}: an active entry holds no catalogue element.", e.where)
    kind = _local(inner.tag)[1]
    if catalogue == "KatLegemiddelpakning" and kind == "Legemiddelpakning":
        yield _package(e, inner)
    elif catalogue == "KatLegemiddelMerkevare" and kind == "LegemiddelMerkevare":
        yield _drug(e, inner, "brand", e.need(inner, "Varenavn"))
    elif catalogue == "KatLegemiddelVirkestoff" and kind == "LegemiddelVirkestoff":
        yield _drug(e, inner, "generic", e.need(inner, "NavnFormStyrke"))
    elif catalogue == "KatVirkestoff" and kind == "Virkestoff":
        yield Substance(e.need(inner, "Id"), e.need(inner, "Navn"), e.code(inner, "Atc"))
    elif catalogue == "KatVirkestoff" and kind == "VirkestoffMedStyrke":
        yield Strength(e.need(inner, "Id"), e.need(inner, "RefVirkestoff"), _strength(e, inner))
    elif catalogue == "KatInteraksjon" and kind == "Interaksjon":
        yield _interaction(e, inner)
    elif catalogue == "KatInteraksjon" and kind == "InteraksjonIkkeVurdert":
        for atc in e.children(inner, "Atc"):
            code = atc.get("V")
            if code:
                yield NotAssessed(code)
    else:
        raise FestError(f"{e.where}: {kind!r} does not belong in {catalogue}.", e.where)


def _shared(e: _Entry, inner: Element) -> dict[str, Any]:
    form = e.child(inner, "LegemiddelformKort")
    return {
        "atc": e.code(inner, "Atc"),
        "rx_group": e.code(inner, "Reseptgruppe"),
        "form": form.get("DN") if form is not None else None,
    }


def _refs(e: _Entry, inner: Element) -> tuple[str, ...]:
    refs = [
        ref
        for sorted_ in e.children(inner, "SortertVirkestoffMedStyrke")
        if (ref := e.text(sorted_, "RefVirkestoffMedStyrke"))
    ]
    refs += [ref for r in e.children(inner, "RefVirkestoff") if (ref := _text(r))]
    return tuple(dict.fromkeys(refs))


def _drug(e: _Entry, inner: Element, kind: str, name: str) -> Drug:
    drug_id = e.need(inner, "Id")
    return Drug(
        kind=kind,
        id=drug_id,
        code=drug_id,
        name=name if kind == "generic" else (e.text(inner, "NavnFormStyrke") or name),
        active=True,
        refs=_refs(e, inner),
        validity=_validity(e, inner) if kind == "brand" else None,
        **_shared(e, inner),
    )


#: An ISO 8601 duration as FEST writes a Varighet (kodeverk 7443: P1Y, P3Y, P7D, P10D).
_DURATION = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?")


def days(duration: str) -> int:
    """About how many days an ISO 8601 duration lasts (a year 365, a month 30), to compare
    two; 0 for one this module would not have imported."""
    found = _DURATION.fullmatch(duration)
    if found is None:
        return 0
    years, months, weeks, days_ = (int(g or 0) for g in found.groups())
    return years * 365 + months * 30 + weeks * 7 + days_


def _validity(e: _Entry, inner: Element) -> str | None:
    """A brand's prescription validity [M 2470-2490], [G 5.9]: the ``Varighet`` that holds
    for both sexes (no ``Kjonn``); when every one names a sex, the shortest, so that no
    prescription outlives what FEST allows for either (isotretinoin: 7 days for fertile
    women, a year for others → 7 days)."""
    general: str | None = None
    by_sex: list[str] = []
    for found in e.children(inner, "Reseptgyldighet"):
        duration = e.need(found, "Varighet")
        if len(duration) > 16 or _DURATION.fullmatch(duration) is None or duration == "P":
            raise FestError(
                f"{e.where}: Reseptgyldighet/Varighet {duration[:20]!r} is not an ISO 8601 "
                "duration such as P1Y or P10D (kodeverk 7443).",
                e.where,
            )
        if e.code(found, "Kjonn") is None:
            general = general or duration
        else:
            by_sex.append(duration)
    if general is not None:
        return general
    return min(by_sex, key=days) if by_sex else None


def _number(e: _Entry, value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value.replace(",", "."))
    except ValueError:
        raise FestError(f"{e.where}: {what} {value[:20]!r} is not a number.", e.where) from None


def _decimal_comma(value: str) -> str:
    """A FEST decimal (point, maybe trailing zeros) as Norwegian text reads it: 2.50 → 2,5."""
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value.replace(".", ",")


def _strength(e: _Entry, inner: Element) -> str | None:
    """``Styrke`` per ``StyrkeNevner`` [M 2840-2870]: "2,5 mg", "1 mg/ml", "5 mg/2 ml"."""
    styrke = e.child(inner, "Styrke")
    value = styrke.get("V") if styrke is not None else None
    if styrke is None or not value:
        return None
    label = f"{_decimal_comma(value)} {styrke.get('U') or ''}".strip()
    per = e.child(inner, "StyrkeNevner")
    if per is not None and per.get("U"):
        amount = _decimal_comma(per.get("V") or "1")
        label += f"/{per.get('U')}" if amount == "1" else f"/{amount} {per.get('U')}"
    return label[:64]


def _pack(e: _Entry, infos: list[Element]) -> dict[str, Any]:
    """A package's ``Pakningsinfo`` [M 2698-2790] as a doctor reads it: its ``Pakningstype``
    (left out when "(ikke angitt)"), ``Pakningsstr`` and ``EnhetPakning``: "Boks, 100 stk",
    "Ampulle av glass, 5x1 ml"; several (a combination pack) joined by " + ". The amount is
    Multippel x Antall x Mengde of a package with one Pakningsinfo."""
    texts = []
    for info in infos:
        kind = e.child(info, "Pakningstype")
        unit = e.code(info, "EnhetPakning")
        size = e.text(info, "Pakningsstr")
        words = " ".join(w for w in (size, unit) if w)
        label = kind.get("DN") if kind is not None and kind.get("V") != "1" else None
        texts.append(", ".join(w for w in (label, words) if w))
    amount = unit = None
    if len(infos) == 1:
        info = infos[0]
        amount = _number(e, e.text(info, "Mengde"), "Mengde")
        for factor in ("Antall", "Multippel"):
            times = _number(e, e.text(info, factor), factor)
            if amount is not None and times is not None:
                amount *= times
        unit = e.code(info, "EnhetPakning")
    text = " + ".join(t for t in texts if t)
    return {"pack": text[:200] or None, "pack_amount": amount, "pack_unit": unit}


def _package(e: _Entry, inner: Element) -> Drug:
    info = e.child(inner, "Pakningsinfo")
    group = e.child(inner, "PakningByttegruppe")
    marketing = e.child(inner, "Markedsforingsinfo")
    active = True
    if marketing is not None:
        today = e.today.isoformat()
        for name in ("AvregDato", "MidlUtgattDato"):
            ended = e.text(marketing, name)
            if ended is not None and ended[:10] <= today:
                active = False
    return Drug(
        kind="package",
        id=e.need(inner, "Id"),
        code=e.need(inner, "Varenr"),
        name=e.need(inner, "NavnFormStyrke"),
        active=active,
        exchange_group=e.text(group, "RefByttegruppe") if group is not None else None,
        brand=e.text(info, "RefLegemiddelMerkevare") if info is not None else None,
        **_pack(e, e.children(inner, "Pakningsinfo")),
        **_shared(e, inner),
    )


def _interaction(e: _Entry, inner: Element) -> Interaction:
    relevance = e.code(inner, "Relevans")
    if relevance not in ("1", "2", "3"):
        raise FestError(
            f"{e.where}: Relevans must be 1, 2 or 3 (kodeverk 7483), got {relevance!r}.", e.where
        )
    groups = []
    for group in e.children(inner, "Substansgruppe"):
        members = []
        for substance in e.children(group, "Substans"):
            name = e.text(substance, "Substans")
            # a substance without an ATC code is named by its FEST id [guide 2527-2545]
            codes = [c for a in e.children(substance, "Atc") if (c := a.get("V"))]
            codes += [SUBSTANCE + r for r in (e.text(substance, "RefVirkestoff"),) if r]
            members += [(code, name or code) for code in codes]
        if not members:
            raise FestError(
                f"{e.where}: a substance group names no substance (no Atc, no RefVirkestoff).",
                e.where,
            )
        groups.append(tuple(members))
    if len(groups) != 2:
        raise FestError(
            f"{e.where}: an interaction has two substance groups, found {len(groups)}.", e.where
        )
    return Interaction(
        id=e.need(inner, "Id"),
        relevance=relevance,
        consequence=e.text(inner, "KliniskKonsekvens") or "",
        mechanism=e.text(inner, "Interaksjonsmekanisme") or "",
        handling=e.text(inner, "Handtering") or "",
        groups=tuple(groups),
    )
