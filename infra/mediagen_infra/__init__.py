"""mediagen's CDK app: one reusable pipeline construct and one stack that composes it.

Public surface::

    from mediagen_infra import MediaGenPipeline, MediaGenPipelineProps, MediaGenStack, build_app
"""

from .application import build_app, stack_name
from .pipeline import API_KEY_PLACEHOLDER, MediaGenPipeline, MediaGenPipelineProps
from .stack import MediaGenStack

__all__ = [
    "API_KEY_PLACEHOLDER",
    "MediaGenPipeline",
    "MediaGenPipelineProps",
    "MediaGenStack",
    "build_app",
    "stack_name",
]
