"""The steps of a job, one module per Lambda function in ``functions/``, behind ports.

- :mod:`~mediagen.steps.submit` -- SQS record body -> validated, recorded, sent to Cliprise, execution started.
- :mod:`~mediagen.steps.accept` -- check and record a job, put it on the jobs queue (HTTP API, S3 intake).
- :mod:`~mediagen.steps.cancel` -- record CANCELLED and stop polling (HTTP API).
- :mod:`~mediagen.steps.poll` -- one status check; returns the state machine's next :class:`Phase` and wait.
- :mod:`~mediagen.steps.persist` -- stream the result into S3, write ``result.json``, record outputs, publish.
- :mod:`~mediagen.steps.finalize` -- the state machine's catch-all and the backstop: record PIPELINE_FAILED.

They share :mod:`~mediagen.steps.core` (ports, checks, terminal transitions, publishing) and
:mod:`~mediagen.steps.phases` (the ``phase`` values, shared with the state machine). Handlers are thin: they
parse the AWS event and call one function here. This package imports nothing at import time, so the CDK app
can read :class:`~mediagen.steps.phases.Phase` cheaply.
"""
