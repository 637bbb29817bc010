"""Signing in: logins of the web UI, the SMART EHR launches journal systems registered, and
the DPoP proofs already accepted (each is accepted once).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, LargeBinary, String, Table, Text

from pll.store.schema.base import ID, UTCDateTime, metadata

#: Logins of the web UI. The access token and what the pages remember (the access basis
#: stated per patient, messages to show) stay here; the browser's signed session cookie
#: carries only a random handle, whose SHA-256 is ``id`` (a dump of this table opens no
#: session).
web_login = Table(
    "web_login",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("token", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("state", Text),
    Index("ix_web_login_expires", "expires_at"),
)

#: SMART EHR launches a journal system has registered (pll.services.launches): the user's
#: access token and the patient it has open, until the web UI redeems the launch once. ``id``
#: is the SHA-256 of the opaque launch id the browser carries (a dump of this table opens
#: nothing); the token stays here minutes at most.
smart_launch = Table(
    "smart_launch",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("token", Text, nullable=False),
    #: the journal system (the token's client_id): its PLL_EMBED_ORIGINS may frame the UI
    Column("client_id", String(200), nullable=False),
    #: the user the journal system launched for (HPR number)
    Column("hpr", String(16), nullable=False),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    #: the fødselsnummer or D-nummer the journal system named, for the page headings
    Column("person_number", String(16), nullable=False),
    Column("basis", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    #: set when the launch is redeemed: it opens one session, once
    Column("used_at", UTCDateTime),
    Index("ix_smart_launch_expires", "expires_at"),
)

#: DPoP proofs accepted within their acceptance window (RFC 9449 §11.1), shared by every
#: process that serves from this database, so a proof is accepted once whichever worker or
#: machine it reaches. ``digest`` is the SHA-256 of the key's thumbprint and the proof's
#: ``jti`` (pll.auth.dpop); a row is deleted a while after ``expires_at``, when its proof is
#: too old to be accepted anyway (pll.store.dpop_proofs).
dpop_proof = Table(
    "dpop_proof",
    metadata,
    Column("digest", LargeBinary, primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_dpop_proof_expires", "expires_at"),
)
