"""What no text a user gives PLL may hold: control characters.

FHIR's ``string`` allows no Unicode character below 32 but tab, line feed and carriage
return (R4 Datatypes, https://hl7.org/fhir/R4/datatypes.html#string). PLL holds every text
it takes to that, whichever way it comes (a FHIR body, a web form, the command line): PostgreSQL
cannot store NUL in a text column while SQLite can, so the same input would be a 500 on
one database and stored on the other, and a control character in a name or a message
misleads whoever reads it.
"""

from __future__ import annotations

import re

from pll.domain.errors import InvalidInput

#: C0 control characters but tab, line feed and carriage return.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def control_refusal(text: str, where: str | None) -> InvalidInput:
    """The refusal (400) of ``text`` at ``where``, naming its first control character."""
    found = CONTROL.search(text)
    code = f"U+{ord(found.group()):04X}" if found else "a control character"
    return InvalidInput(
        f"The text holds the control character {code}; no text may hold control characters "
        "but tab, line feed and carriage return.",
        where,
        norwegian=(
            f"Teksten inneholder kontrolltegnet {code}; ingen tekst kan inneholde "
            "kontrolltegn utenom tabulator og linjeskift."
        ),
    )


def plain(text: str, where: str | None) -> str:
    """``text`` as it is, or :class:`InvalidInput` when it holds a control character."""
    if CONTROL.search(text):
        raise control_refusal(text, where)
    return text
