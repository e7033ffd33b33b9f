"""What the CLI prints of job data goes through :func:`clean` first.

Job ids, models, error messages, problem texts and metadata come from whoever wrote the job (or from the
provider). Printed raw, an ANSI escape sequence could recolour or rewrite the operator's terminal, a carriage
return could overwrite the line it is on (hiding a FAILED behind a SUCCEEDED), BEL rings, and bidirectional
overrides reorder what is shown. :func:`clean` makes every such character visible as an escape instead.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls (tab, CR and LF included), DEL, C1 controls, zero-width and bidirectional formatting characters,
# line and paragraph separators, the byte order mark and interlinear annotation characters.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: Any) -> str:
    """``str(value)`` with every control or invisible formatting character shown as an escape (``\\x1b``,
    ``\\r``-> ``\\x0d``, ``\\u202e``), so a printed field is exactly one line of plain text. ``None`` prints as
    an empty string."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub(_escape, text)
