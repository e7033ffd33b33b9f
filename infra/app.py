#!/usr/bin/env python3
"""CDK entry point: synthesizes ``MediaGen-<stage>`` into ``cdk.out`` (or ``CDK_OUTDIR``).

Run through the CLI (``npx cdk synth``, ``npx cdk deploy -c stage=prod``) or directly from the repository
root (``.venv/bin/python infra/app.py``; ``MEDIAGEN_SKIP_BUNDLING=1`` for a fast synth without the
Lambda assets, as the local stack and the tests do). No AWS account or credentials are needed to synth.
cdk-nag's AWS Solutions checks run on every synth; an unacknowledged finding exits 1 (report:
``<outdir>/validation-report.json``). Deployment options: ``-c key=value`` (see ``mediagen_infra.context``
and ``docs/deploy.md``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Node 20 makes jsii print an end-of-life banner on every run; the toolchain is pinned, so keep it quiet.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mediagen_infra import build_app  # noqa: E402 -- needs infra/ on sys.path


def main() -> None:
    """Build the app and write the cloud assembly."""
    app, _stack = build_app()
    app.synth()


if __name__ == "__main__":
    main()
