"""Infra tests import the CDK app package ``mediagen_infra`` from ``infra/`` (as ``infra/app.py`` does)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"

# jsii prints a Node 20 end-of-life banner on every start; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))
