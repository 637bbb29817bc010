"""The audit trail's seal: a keyed MAC on every record and a hash chain through all of them.

Two layers make the append-only log tamper-evident (issue 3, DESIGN §3 rule 5):

* Every record carries ``mac = HMAC-SHA256(key, canonical(record))``, computed by whoever
  writes it — Python, or the hot read's SQL statement on PostgreSQL, which builds the same
  HMAC from ``sha256()`` (RFC 2104 §2) with the key's inner and outer pads passed in as
  parameters. An edited record, or one inserted by someone without the key, fails its MAC.
* A sealer links records, in the order it finds them, into one chain:
  ``chain_hash[n] = HMAC(key, chain_hash[n-1] | n | id | mac)``. A deleted record leaves a
  gap in ``chain_seq`` and breaks the link after it. Sealing is done in batches after the
  fact, not inline, because one global chain written by every request would serialise all
  reads and writes behind a single lock; a record is durable with its MAC before the
  response, and sealed within about a second.

What it cannot show: a record deleted before it was sealed, and a truncated tail when the
chain head is rewritten too; publishing the head hash (``pll audit verify`` prints it)
anchors the chain outside the database.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

SEP = "\x1f"  # ASCII unit separator: never part of a field PLL writes
GENESIS = "0" * 64
_BLOCK = 64  # SHA-256 block size


def timestamp(moment: datetime) -> str:
    """The canonical form of ``recorded_at``: naive UTC with microseconds, as stored."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def prefix(
    recorded_at: datetime,
    actor: str,
    action: str,
    resource_type: str,
    basis: str | None,
    outcome: str,
) -> str:
    """The part of the canonical record the writer knows before it reads anything."""
    return SEP.join(
        (timestamp(recorded_at), actor, action, resource_type, basis or "", outcome, "")
    )


def canonical(
    recorded_at: datetime,
    actor: str,
    action: str,
    resource_type: str,
    basis: str | None,
    outcome: str,
    resource_id: str | None,
    patient_id: str | None,
    flag: str | None,
) -> bytes:
    """The bytes a record's MAC covers. The fields a one-statement read only learns from the
    database (resource, patient, flag) come last, so SQL can append them to :func:`prefix`."""
    tail = SEP.join((resource_id or "", patient_id or "", flag or ""))
    return (prefix(recorded_at, actor, action, resource_type, basis, outcome) + tail).encode()


@dataclass(frozen=True)
class AuditKey:
    """The secret the MACs and the chain are keyed with (``PLL_AUDIT_KEY`` or a file)."""

    secret: bytes

    @classmethod
    def load(cls, data_dir: Path) -> AuditKey:
        """``PLL_AUDIT_KEY`` (hex, at least 32 bytes) if set — every process of a deployment
        must share it — else ``audit-key`` in the data directory, made on first use."""
        given = os.environ.get("PLL_AUDIT_KEY")
        if given:
            secret = bytes.fromhex(given)
            if len(secret) < 32:
                raise ValueError("PLL_AUDIT_KEY must be at least 32 bytes, written in hex")
            return cls(secret)
        path = data_dir / "audit-key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            tmp.replace(path)
        return cls(bytes.fromhex(path.read_text().strip()))

    def mac(self, content: bytes) -> str:
        """HMAC-SHA256 of ``content`` in hex: RFC 2104 from the key's two padded blocks
        hashed once (:meth:`pads`), so a record costs two hash copies and no key schedule —
        a third of ``hmac.new`` (a bulk load and the sealer make millions, issue 20)."""
        inner_start, outer_start = _started(self.secret)
        inner = inner_start.copy()
        inner.update(content)
        outer = outer_start.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())

    def link(self, previous: str, seq: int, record_id: int, mac: str | None) -> str:
        """The chain hash of record number ``seq`` (1, 2, ...) after ``previous``."""
        return self.mac(SEP.join((previous, str(seq), str(record_id), mac or "")).encode())

    def pads(self) -> tuple[bytes, bytes]:
        """HMAC's inner and outer keys (RFC 2104 §2), for SQL that has only ``sha256()``."""
        key = self.secret
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


@lru_cache(maxsize=16)
def _started(secret: bytes) -> tuple[Any, Any]:
    """SHA-256 states after the inner and the outer padded key (kept per key: an
    :class:`AuditKey` stays picklable), copied for each MAC."""
    inner, outer = AuditKey(secret).pads()
    return hashlib.sha256(inner), hashlib.sha256(outer)
