"""mediagen's CDK app: one reusable pipeline construct and one stack that composes it.

Modules: ``pipeline`` (the :class:`MediaGenPipeline` construct, which composes the others), ``props`` (its
options), ``inbox`` (S3 inbox rules), ``permissions`` (least privilege), ``state_machine``, ``callback_api``,
``jobs_api``, ``intake``, ``monitoring`` (one construct each), ``storage``, ``lambdas``, ``bundling``,
``compliance``, ``context`` and ``application`` (the app, ``MediaGen-<stage>``).

Public surface::

    from mediagen_infra import (DEFAULT_INBOX_RULES, InboxRule, MediaGenPipeline, MediaGenPipelineProps,
                                MediaGenStack, add_security_checks, build_app)
"""

from .application import build_app, stack_name
from .compliance import add_security_checks
from .inbox import DEFAULT_INBOX_RULES, InboxRule
from .pipeline import MediaGenPipeline
from .props import API_KEY_PLACEHOLDER, MediaGenPipelineProps
from .stack import MediaGenStack

__all__ = [
    "API_KEY_PLACEHOLDER",
    "DEFAULT_INBOX_RULES",
    "InboxRule",
    "MediaGenPipeline",
    "MediaGenPipelineProps",
    "MediaGenStack",
    "add_security_checks",
    "build_app",
    "stack_name",
]
