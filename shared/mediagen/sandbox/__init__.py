"""The sandbox: a loopback emulator of the Cliprise Business API, so the whole pipeline runs with no
network and no account.

>>> from mediagen.sandbox import Emulator
>>> with Emulator(api_keys=["sk-sandbox-demo"], processing_seconds=0.5) as emu:  # doctest: +SKIP
...     print(emu.base_url)   # http://127.0.0.1:<port>/app/cliprise; send Host: business.api.cliprise.app

See :mod:`mediagen.sandbox.server` for the endpoints and answers, :mod:`mediagen.sandbox.faults` for
the ``[sandbox:…]`` prompt tokens that make a job misbehave on purpose (also applied to every job by
``callback_mode``, or to a random share of jobs by ``fault_rates``), :mod:`mediagen.sandbox.media` for
the result files, and ``docs/sandbox.md`` for the user guide.
"""

from mediagen.sandbox.faults import (
    FAIL_MESSAGE,
    TOKENS,
    Faults,
    parse_callback_mode,
    parse_fault_rate,
    parse_fault_rates,
    parse_faults,
)
from mediagen.sandbox.server import PUBLIC_HOST, Emulator, default_modality_of, serve

__all__ = [
    "FAIL_MESSAGE", "PUBLIC_HOST", "TOKENS", "Emulator", "Faults", "default_modality_of", "parse_callback_mode",
    "parse_fault_rate", "parse_fault_rates", "parse_faults", "serve",
]
