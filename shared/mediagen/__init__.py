"""mediagen: run paid generative-media jobs on the Cliprise Business API and land every result in S3.

The package holds everything the Lambda handlers in ``functions/`` share: the model catalog, the Cliprise
transport, the task repository, output storage, events, settings, the sandbox emulator, the local stack
and the CLI. Handlers import only the submodules they use; this module stays import-free on purpose so
that cold starts pay for nothing they do not need.
"""

__version__ = "0.1.0"
