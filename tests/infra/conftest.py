"""Infra tests import the CDK app package ``mediagen_infra`` from ``infra/`` (as ``infra/app.py`` does).

``dev_assembly`` synthesizes ``MediaGen-dev`` once per session, the way ``npx cdk synth`` does (cdk-nag
included; bundling skipped through the switch the local stack uses, which leaves the template unchanged),
and the template, security and observability tests all read that one cloud assembly.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
STACK = "MediaGen-dev"

# jsii prints a Node 20 end-of-life banner on every start; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))


@pytest.fixture(scope="session")
def dev_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cloud assembly folder of ``MediaGen-dev`` (default props, cdk-nag on)."""
    from mediagen_infra import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CDK_CONTEXT_JSON", raising=False)  # no context left over from a CLI run
        app, stack = build_app(outdir=str(outdir), skip_bundling=True)
        assert stack.stack_name == STACK
        app.synth()  # raises when cdk-nag reports an unacknowledged finding
    return outdir


@pytest.fixture(scope="session")
def dev_template_path(dev_assembly: Path) -> Path:
    return dev_assembly / f"{STACK}.template.json"


@pytest.fixture(scope="session")
def dev_template_json(dev_template_path: Path) -> dict[str, Any]:
    return dict(json.loads(dev_template_path.read_text()))
