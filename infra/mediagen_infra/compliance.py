"""Security checks on every synth, and the one place acknowledgments and checkov skips are written.

* **cdk-nag** (``AwsSolutionsChecks``, cdk-nag 3.x) runs as a CDK policy-validation plugin: a finding makes
  ``app.synth()`` (and so ``npx cdk synth``/``deploy``) fail and lands in ``cdk.out/validation-report.json``.
  :func:`add_security_checks` registers it on an app (or stage); :func:`acknowledge` records a finding that is
  accepted on purpose, *with its reason*, on the construct it concerns (it covers that construct and its
  children). Acknowledgments use the ``AwsSolutions::<rule>`` form, so CDK lists each one with its reason
  under ``suppressedViolations`` in the validation report: the audit trail a security reviewer reads.
* **checkov** reads CloudFormation resource metadata (``Metadata.checkov.skip``); :func:`skip_checkov` adds a
  skip with its comment to a resource.

The pipeline construct acknowledges its own findings, so an app that embeds it and runs cdk-nag itself gets
the same result (and the same reasons) as ``MediaGen-<stage>``.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import Construct, IConstruct

#: The cdk-nag pack whose findings fail the synth.
NAG_PACK = "AwsSolutions"
#: The CloudFormation metadata key checkov reads skips from.
CHECKOV_METADATA_KEY = "checkov"
#: Why no log group of the pipeline has a customer-managed KMS key (checkov ``CKV_AWS_158``).
LOG_GROUP_KMS_COMMENT = (
    "CloudWatch Logs encrypts every log group at rest with service-managed keys; the handlers' log lines are "
    "redacted (no API key, no signed URL), so a customer-managed key would add a key policy and cost only."
)


def add_security_checks(scope: Construct) -> None:
    """Run cdk-nag's ``AwsSolutionsChecks`` on every synth of ``scope`` (an ``App`` or a ``Stage``).

    Unacknowledged findings make the synth fail; the report is ``<outdir>/validation-report.json``.
    """
    from cdk_nag import AwsSolutionsChecks  # imported here: only apps that run the checks need cdk-nag

    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


def _require_reason(rule: str, reason: str) -> None:
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason (at least 20 characters), got {reason!r}")


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept cdk-nag finding ``rule`` (e.g. ``AwsSolutions-SMG4``) on ``scope`` and its children.

    Raises:
        ValueError: ``reason`` is empty or too short to explain anything.
    """
    _require_reason(rule, reason)
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_PACK}::{rule}", reason=reason))


def nag_flatten(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it in finding ids.

    Mirrors cdk-nag's ``flattenCfnReference``: ``{"Fn::GetAtt": [X, "Arn"]}`` -> ``<X.Arn>``,
    ``{"Ref": X}`` -> ``<X>``, ``Fn::Join`` joins, ``${...}`` in strings becomes ``<...>``.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(nag_flatten(item) for item in items)
        if "Fn::Sub" in value:
            return nag_flatten(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{nag_flatten(resource)}.{nag_flatten(attribute)}>"
        if "Fn::ImportValue" in value:
            return nag_flatten(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{nag_flatten(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"))


def acknowledge_wildcard_resource(scope: IConstruct, resource: str, reason: str) -> None:
    """Accept the ``AwsSolutions-IAM5`` finding for one wildcard *resource* (e.g. ``<bucket ARN>/*``).

    The finding id names the resource as cdk-nag prints it, so only that exact resource pattern is
    accepted, never a wildcard action nor another resource.

    Args:
        scope: the role (or policy) whose statements carry the resource.
        resource: the resource as given to the policy statement (tokens allowed).
        reason: why the wildcard is needed.
    """
    flat = nag_flatten(Stack.of(scope).resolve(resource))
    acknowledge(scope, f"AwsSolutions-IAM5[Resource::{flat}]", reason)


def _cfn_resource(construct: IConstruct) -> CfnResource:
    if isinstance(construct, CfnResource):
        return construct
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    return child


def skip_checkov(construct: IConstruct, check_id: str, comment: str) -> None:
    """Record in ``construct``'s CloudFormation metadata that checkov check ``check_id`` is skipped.

    Args:
        construct: an L1 resource or an L2 construct (its default child gets the metadata).
        check_id: e.g. ``CKV_AWS_116``.
        comment: why; checkov prints it as the suppress comment.

    Raises:
        ValueError: ``comment`` is empty or too short to explain anything.
    """
    _require_reason(check_id, comment)
    resource = _cfn_resource(construct)
    current = resource.get_metadata(CHECKOV_METADATA_KEY) or {}
    skips = [s for s in current.get("skip", []) if s.get("id") != check_id]
    skips.append({"id": check_id, "comment": comment})
    resource.add_metadata(CHECKOV_METADATA_KEY, {**current, "skip": skips})


def skip_log_group_checks(log_group: IConstruct) -> None:
    """The checkov skips every log group of the pipeline shares (:data:`LOG_GROUP_KMS_COMMENT`)."""
    skip_checkov(log_group, "CKV_AWS_158", LOG_GROUP_KMS_COMMENT)
