"""Starting the per-job Step Functions execution (the port and its adapter)."""

from __future__ import annotations

import json
from typing import Any, Protocol


class ExecutionStarter(Protocol):
    def start(self, name: str, state: dict[str, Any]) -> str:
        """Start an execution named ``name`` with input ``state``; return its ARN.

        Starting a name that already exists returns the existing execution's ARN (idempotent)."""
        ...


class StepFunctionsStarter:
    """``ExecutionStarter`` on a Standard state machine (execution names are unique for 90 days)."""

    def __init__(self, state_machine_arn: str, sfn_client: Any | None = None) -> None:
        if sfn_client is None:
            from mediagen import aws

            sfn_client = aws.client("stepfunctions")
        self._sfn = sfn_client
        self._arn = state_machine_arn

    def start(self, name: str, state: dict[str, Any]) -> str:
        try:
            started = self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(state))
            return str(started["executionArn"])
        except self._sfn.exceptions.ExecutionAlreadyExists:
            # arn:aws:states:region:account:stateMachine:NAME -> ...:execution:NAME:EXECUTION
            return self._arn.replace(":stateMachine:", ":execution:") + f":{name}"
