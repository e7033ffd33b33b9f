"""mediagen's CDK app: one reusable pipeline construct and one stack that composes it.

Public surface::

    from mediagen_infra import (DEFAULT_INBOX_RULES, InboxRule, MediaGenPipeline, MediaGenPipelineProps,
                                MediaGenStack, add_security_checks, build_app)
"""

from .application import build_app, stack_name
from .compliance import add_security_checks
from .pipeline import API_KEY_PLACEHOLDER, DEFAULT_INBOX_RULES, InboxRule, MediaGenPipeline, MediaGenPipelineProps
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
