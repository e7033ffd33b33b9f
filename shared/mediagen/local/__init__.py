"""The embedded local stack: the whole pipeline on one machine, no AWS account.

moto plays SQS, DynamoDB, S3, EventBridge, Secrets Manager and Step Functions (executing the state machine
definition that ``cdk synth`` wrote), the Lambda tasks run the real handlers in-process, and the sandbox
emulator plays Cliprise on loopback. See :class:`mediagen.local.stack.EmbeddedStack`.
"""

from mediagen.local.stack import EmbeddedStack, default_template_path, repo_root

__all__ = ["EmbeddedStack", "default_template_path", "repo_root"]
