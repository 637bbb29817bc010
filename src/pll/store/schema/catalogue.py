"""The drug catalogue (FEST, catalogue M30).

Every row carries the catalogue version it came from. An import fills a new version in
small transactions, then one short transaction makes it the active one, so readers never
see half a catalogue and a failed import leaves the previous one in place.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text, text

from pll.store.schema.base import ID, UTCDateTime, metadata

#: Search tokens compare bytewise on PostgreSQL too, so a prefix is a plain index range.
Token = String(64).with_variant(String(64, collation="C"), "postgresql")

fest_catalog = Table(
    "fest_catalog",
    metadata,
    Column("version", Integer, primary_key=True),
    #: loading, active or retired
    Column("status", String(10), nullable=False),
    Column("extracted_at", UTCDateTime),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("counts", Text, nullable=False),
    # one import at a time: at most one version is loading
    Index(
        "ux_fest_catalog_loading",
        "status",
        unique=True,
        postgresql_where=text("status = 'loading'"),
        sqlite_where=text("status = 'loading'"),
    ),
)

fest_drug = Table(
    "fest_drug",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    #: package (Legemiddelpakning), brand (LegemiddelMerkevare), generic (LegemiddelVirkestoff)
    Column("kind", String(10), nullable=False),
    #: what an entry's FEST coding carries: the package's Varenr, else the FEST id
    Column("code", String(ID), nullable=False),
    Column("name", Text, nullable=False),
    Column("atc", String(16)),
    Column("rx_group", String(8)),
    Column("exchange_group", String(ID)),
    Column("brand", String(ID)),
    Column("form", Text),
    Column("active", Boolean, nullable=False),
    #: how long a prescription is valid (Reseptgyldighet, ISO 8601 such as P1Y or P10D), NULL
    #: when FEST gives none; a package has its brand's, a generic its brands' when they agree
    Column("validity", String(16)),
    #: a package's Pakningsinfo as a doctor reads it: "Blisterpakning, 30 stk"
    Column("pack", Text),
    #: the total amount in a package (Multippel x Antall x Mengde) in pack_unit (EnhetPakning)
    Column("pack_amount", Float),
    Column("pack_unit", String(16)),
    Index("ix_fest_drug_code", "catalog", "code"),
    Index("ix_fest_drug_atc", "catalog", "atc"),
    Index("ix_fest_drug_brand", "catalog", "brand"),
)

fest_substance = Table(
    "fest_substance",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("name", Text, nullable=False),
    Column("atc", String(16)),
)

#: VirkestoffMedStyrke: a substance at a strength, which brands and generics name
fest_strength = Table(
    "fest_strength",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("substance", String(ID), nullable=False),
    #: Styrke (and StyrkeNevner) as a doctor reads it: "2,5 mg", "1 mg/ml"
    Column("label", Text),
)

#: What a brand or generic names (a strength, or a substance directly), as the extract says
#: it; resolved into fest_drug_substance once the whole extract is in.
fest_ref = Table(
    "fest_ref",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("drug", String(ID), primary_key=True),
    Column("ref", String(ID), primary_key=True),
)

fest_drug_substance = Table(
    "fest_drug_substance",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("drug", String(ID), primary_key=True),
    Column("substance", String(ID), primary_key=True),
    Index("ix_fest_drug_substance_substance", "catalog", "substance"),
)

fest_interaction = Table(
    "fest_interaction",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("relevance", String(2), nullable=False),
    Column("consequence", Text, nullable=False),
    Column("mechanism", Text, nullable=False),
    Column("handling", Text, nullable=False),
)

fest_interaction_atc = Table(
    "fest_interaction_atc",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("interaction", String(ID), primary_key=True),
    #: which of the two substance groups (1 or 2)
    Column("side", Integer, primary_key=True),
    #: an ATC code at any level, or "@" + a substance id for a substance without one
    Column("atc", String(ID + 1), primary_key=True),
    Column("name", Text),
    Index("ix_fest_interaction_atc_atc", "catalog", "atc"),
)

fest_not_assessed = Table(
    "fest_not_assessed",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("atc", String(16), primary_key=True),
)

fest_name = Table(
    "fest_name",
    metadata,
    Column("catalog", Integer, primary_key=True),
    #: one word of a drug's or substance's name, lower case without accents
    Column("token", Token, primary_key=True),
    Column("drug", String(ID), primary_key=True),
)
