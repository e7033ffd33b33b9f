"""Build the CDK app the same way for the CLI (``npx cdk synth``), ``python infra/app.py`` and the tests.

* Stack ``MediaGen-<stage>``; the stage comes from the context key ``stage`` (default ``dev``):
  ``npx cdk synth -c stage=prod``. The stage also names the metrics namespace (``MediaGen/<stage>``) and the
  service (``mediagen-<stage>``) of the functions, alarms and dashboard.
* Environment-agnostic: no account or region lookups, works offline without credentials.
* Output folder: ``CDK_OUTDIR`` (set by the CLI), else ``<repo>/cdk.out``.
* Feature flags: the ``context`` of ``cdk.json`` is applied also when the app runs without the CLI, so
  both ways produce the same template.
* ``MEDIAGEN_SKIP_BUNDLING=1`` skips asset bundling (the layer's pip install, the code copies, byte-compiling): synth
  takes seconds and the template is otherwise identical (asset hashes do not depend on bundling).
* cdk-nag's ``AwsSolutionsChecks`` runs on every synth: an unacknowledged finding fails it (exit 1; the
  report is ``<outdir>/validation-report.json``).
* Deployment options come from context too (``-c daily_credit_budget=5000``, ...): see
  :mod:`mediagen_infra.context`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, App

from .bundling import REPO_ROOT
from .compliance import add_security_checks
from .context import DEFAULT_STAGE
from .props import MediaGenPipelineProps
from .stack import MediaGenStack

#: Environment variable that turns bundling off (``1``/``true``/``yes``).
SKIP_BUNDLING_ENV = "MEDIAGEN_SKIP_BUNDLING"
#: CDK context key listing the stacks whose assets are bundled (``[]``: none).
BUNDLING_STACKS_CONTEXT = "aws:cdk:bundling-stacks"
#: Context the CDK CLI sets by default; applied here too so a direct run writes the same template
#: (``aws:cdk:path`` resource metadata, used by cfn-lint/checkov findings, and asset metadata).
CLI_DEFAULT_CONTEXT: Mapping[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
}
_STAGE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")


def stack_name(stage: str) -> str:
    """The stack name of ``stage``, e.g. ``MediaGen-dev``."""
    return f"MediaGen-{stage}"


def bundling_skipped(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``MEDIAGEN_SKIP_BUNDLING`` asks to skip bundling."""
    env = os.environ if environ is None else environ
    return env.get(SKIP_BUNDLING_ENV, "").strip().lower() in {"1", "true", "yes"}


def cdk_json_context(repo_root: Path = REPO_ROOT) -> dict[str, Any]:
    """The ``context`` object of ``<repo_root>/cdk.json`` (feature flags); ``{}`` when absent."""
    path = repo_root / "cdk.json"
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get("context", {}))


def build_app(
    *,
    outdir: str | None = None,
    skip_bundling: bool | None = None,
    context: Mapping[str, Any] | None = None,
    pipeline_props: MediaGenPipelineProps | None = None,
) -> tuple[App, MediaGenStack]:
    """Create the app and its one stack, with cdk-nag registered (not yet synthesized: call ``app.synth()``).

    Args:
        outdir: cloud assembly folder; default ``CDK_OUTDIR`` or ``<repo>/cdk.out``.
        skip_bundling: skip asset bundling; default from ``MEDIAGEN_SKIP_BUNDLING``.
        context: extra context (e.g. ``{"stage": "prod"}``), over ``cdk.json``'s.
        pipeline_props: options of the pipeline construct; default: from the context.

    Raises:
        ValueError: the stage is not a letter followed by up to 63 letters, digits or dashes, or another
            context option is malformed.
    """
    skip = bundling_skipped() if skip_bundling is None else skip_bundling
    app = App(
        outdir=outdir or os.environ.get("CDK_OUTDIR") or str(REPO_ROOT / "cdk.out"),
        context={**CLI_DEFAULT_CONTEXT, **cdk_json_context(), **(context or {})},
        # After the CLI's context, which always sets the bundling stacks (default ["**"]).
        post_cli_context={BUNDLING_STACKS_CONTEXT: []} if skip else None,
        # No AWS::CDK::Metadata resource: the template is the same with and without the CLI.
        analytics_reporting=False,
    )
    stage = str(app.node.try_get_context("stage") or DEFAULT_STAGE)
    if not _STAGE_PATTERN.fullmatch(stage):
        raise ValueError(f"invalid stage {stage!r}: use a letter, then letters, digits or '-' (max 64)")
    add_security_checks(app)
    stack = MediaGenStack(app, stack_name(stage), stage=stage, pipeline_props=pipeline_props)
    if skip:
        Annotations.of(stack).add_warning_v2(
            "mediagen:bundling-skipped",
            f"{SKIP_BUNDLING_ENV} is set: Lambda assets were not bundled; do not deploy this cloud assembly",
        )
    return app, stack
