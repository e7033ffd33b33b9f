"""Who owns a job and who may see it (issue 13, finding 7): principal ARNs as API Gateway's IAM authorizer gives
them, normalised so that every session of one role is one owner."""

from __future__ import annotations

import pytest

from mediagen.errors import ConfigurationError
from mediagen.principals import (
    ANONYMOUS,
    caller_principal,
    channel_owner,
    may_see,
    normalise_principal,
    owner_of,
    parse_operators,
)


@pytest.mark.parametrize(("arn", "owner"), [
    ("arn:aws:sts::111122223333:assumed-role/Uploader/session-1", "arn:aws:iam::111122223333:role/Uploader"),
    ("arn:aws-cn:sts::111122223333:assumed-role/Uploader/i-0abc", "arn:aws-cn:iam::111122223333:role/Uploader"),
    ("arn:aws:iam::111122223333:role/team/a/Uploader", "arn:aws:iam::111122223333:role/Uploader"),
    ("arn:aws:iam::111122223333:user/ops/alice", "arn:aws:iam::111122223333:user/alice"),
    ("arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:root"),
    ("arn:aws:sts::111122223333:federated-user/bob", "arn:aws:sts::111122223333:federated-user/bob"),
])
def test_principals_are_normalised_to_one_owner_per_role_or_user(arn: str, owner: str) -> None:
    assert normalise_principal(arn) == owner


def test_the_same_role_name_in_another_account_is_another_owner() -> None:
    assert normalise_principal("arn:aws:sts::111122223333:assumed-role/R/s") != \
        normalise_principal("arn:aws:sts::444455556666:assumed-role/R/s")


def test_only_the_authorizers_request_context_names_the_caller_never_a_header() -> None:
    event = {"headers": {"x-mediagen-local-principal": "arn:aws:iam::111122223333:user/admin"},
             "requestContext": {"authorizer": {"iam": {"userArn": "arn:aws:iam::111122223333:user/bob"}}}}
    assert caller_principal(event) == "arn:aws:iam::111122223333:user/bob"
    assert caller_principal({"headers": event["headers"], "requestContext": {}}) == ANONYMOUS
    assert caller_principal({"requestContext": {"authorizer": {"jwt": {"claims": {}}}}}) == ANONYMOUS


def test_channel_jobs_are_owned_by_their_channel_and_only_operators_see_them() -> None:
    assert channel_owner({"channel": "s3-manifest", "bucket": "in"}) == "s3:in"
    assert channel_owner({"channel": "s3-drop", "bucket": "in"}) == "s3:in"
    assert channel_owner(None) == "sqs"
    legacy_api_job = {"job_id": "old", "source": {"channel": "api"}}  # recorded before owners: nobody's
    assert owner_of(legacy_api_job) == "api" and not may_see(legacy_api_job, ANONYMOUS, frozenset())
    operators = parse_operators("arn:aws:iam::111122223333:role/ops/Operator, arn:aws:iam::111122223333:user/x")
    operator = normalise_principal("arn:aws:sts::111122223333:assumed-role/Operator/alice")
    assert may_see({"job_id": "q"}, operator, operators) and not may_see({"job_id": "q"}, "sqs-ish", operators)
    assert may_see({"job_id": "mine", "owner": "arn:aws:iam::1:user/me"}, "arn:aws:iam::1:user/me", frozenset())


def test_a_malformed_operator_list_names_the_variable() -> None:
    assert parse_operators("") == frozenset()
    with pytest.raises(ConfigurationError, match="MEDIAGEN_OPERATOR_PRINCIPALS: 'ops' is not an IAM principal"):
        parse_operators("arn:aws:iam::111122223333:role/Operator ops")
