"""The audit trail's MAC (pll.auth.audit): HMAC-SHA256 by RFC 2104, whatever the key's length."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pll.auth.audit import AuditKey


@pytest.mark.parametrize("size", [32, 64, 65, 100])
def test_the_mac_is_hmac_sha256(size: int) -> None:
    key = AuditKey(bytes(range(size)))
    for content in (b"", b"a record", b"\x1f".join([b"x" * 70] * 3)):
        assert key.mac(content) == hmac.new(key.secret, content, hashlib.sha256).hexdigest()
