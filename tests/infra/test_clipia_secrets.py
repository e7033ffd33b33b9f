"""Clipia in the construct: off by default (the deployment offers Cliprise only); ``enable_clipia`` creates its
key secret (placeholder) and webhook signing secret (random, never a readable placeholder) with stack outputs;
given secrets are used, not created. Only submit, poll and persist may read the Clipia key, only callback the
webhook secret; the functions that accept jobs are told which providers are offered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_secretsmanager as secretsmanager

from mediagen.settings import Settings
from mediagen_infra import MediaGenPipeline, MediaGenPipelineProps, add_security_checks
from mediagen_infra.props import CLIPIA_API_KEY_PLACEHOLDER

ACCOUNT, REGION = "111122223333", "eu-west-1"
KEY_READERS = {"submit", "poll", "persist"}
ACCEPTORS = {"submit", "api", "intake"}


def _synth(outdir: Path, props: MediaGenPipelineProps) -> dict[str, Any]:
    app = App(outdir=str(outdir), post_cli_context={"aws:cdk:bundling-stacks": []})
    add_security_checks(app)  # cdk-nag: a finding the construct did not acknowledge fails the synth
    stack = Stack(app, "ClipiaMedia", env=Environment(account=ACCOUNT, region=REGION))
    if props.enable_clipia is False and props.clipia_api_key_secret is None:
        props = MediaGenPipelineProps(
            clipia_api_key_secret=secretsmanager.Secret.from_secret_name_v2(stack, "ClipiaKey", "acme/clipia-key"),
            clipia_webhook_secret=secretsmanager.Secret.from_secret_name_v2(stack, "ClipiaHook", "acme/clipia-hook"))
    MediaGenPipeline(stack, "MediaGen", props)
    app.synth()
    return dict(json.loads((outdir / "ClipiaMedia.template.json").read_text())["Resources"])


@pytest.fixture(scope="module")
def created_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("clipia-created")
    _synth(outdir, MediaGenPipelineProps(enable_clipia=True))
    return outdir


@pytest.fixture(scope="module")
def created(created_dir: Path) -> dict[str, Any]:
    return dict(json.loads((created_dir / "ClipiaMedia.template.json").read_text())["Resources"])


@pytest.fixture(scope="module")
def given(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _synth(tmp_path_factory.mktemp("clipia-given"), MediaGenPipelineProps())


def _functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["Handler"].split(".")[1]: r["Properties"] for r in resources.values()
            if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"].startswith("functions.")}


def _secret_reads(resources: dict[str, Any], function: dict[str, Any]) -> str:
    role = function["Role"]["Fn::GetAtt"][0]
    return json.dumps([s for r in resources.values() if r["Type"] == "AWS::IAM::Policy"
                       and {"Ref": role} in r["Properties"]["Roles"]
                       for s in r["Properties"]["PolicyDocument"]["Statement"]
                       if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])])


def test_created_clipia_secrets_are_read_only_by_the_functions_that_need_them(created: dict[str, Any]) -> None:
    secrets = {lid: r for lid, r in created.items() if r["Type"] == "AWS::SecretsManager::Secret"}
    key_id = next(lid for lid in secrets if lid.startswith("MediaGenClipiaApiKeySecret"))
    hook_id = next(lid for lid in secrets if lid.startswith("MediaGenClipiaWebhookSecret"))
    assert secrets[key_id]["Properties"]["SecretString"] == CLIPIA_API_KEY_PLACEHOLDER
    hook = secrets[hook_id]["Properties"]
    assert "SecretString" not in hook and hook["GenerateSecretString"]["PasswordLength"] >= 32
    aliases = {f.alias for f in Settings.model_fields.values()}
    for name, function in _functions(created).items():
        variables = function["Environment"]["Variables"]
        assert {k for k in variables if k.startswith("MEDIAGEN_")} <= aliases, name
        assert (variables.get("MEDIAGEN_CLIPIA_API_KEY_SECRET_ID") == {"Ref": key_id}) == (name in KEY_READERS), name
        assert (variables.get("MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID") == {"Ref": hook_id}) == (name == "callback"), name
        assert variables.get("MEDIAGEN_PROVIDERS") == ("cliprise,clipia" if name in ACCEPTORS else None), name
        reads = _secret_reads(created, function)
        assert (key_id in reads) == (name in KEY_READERS), name
        assert (hook_id in reads) == (name == "callback"), name
        assert "CLIPIA_API_KEY" not in variables and "CLIPIA_WEBHOOK_SECRETS" not in variables, name


def test_given_clipia_secrets_are_used_and_not_created(given: dict[str, Any]) -> None:
    created_ids = [lid for lid, r in given.items() if r["Type"] == "AWS::SecretsManager::Secret"]
    assert not [lid for lid in created_ids if "Clipia" in lid]
    functions = _functions(given)
    assert "acme/clipia-key" in json.dumps(functions["persist"]["Environment"]["Variables"])
    assert "acme/clipia-hook" in json.dumps(functions["callback"]["Environment"]["Variables"])
    assert "acme/clipia-key" in _secret_reads(given, functions["submit"])
    assert "acme/clipia-key" not in _secret_reads(given, functions["callback"])
    assert "acme/clipia-hook" not in _secret_reads(given, functions["poll"])


def test_checkov_passes_the_clipia_secrets_and_their_one_skip_is_explained(created_dir: Path) -> None:
    import subprocess

    checkov = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.fail(f"{checkov} is missing: run `make .venv-checkov/.installed` (`make test` does this for you)")
    result = subprocess.run([str(checkov), "--file", str(created_dir / "ClipiaMedia.template.json"), "--framework",
                             "cloudformation", "--skip-download", "--output", "json"],
                            capture_output=True, text=True, timeout=600, cwd=created_dir)
    assert result.returncode in (0, 1), result.stderr
    results = json.loads(result.stdout)["results"]
    clipia_failed = [c["check_id"] for c in results["failed_checks"] if "Clipia" in c["resource"]]
    assert clipia_failed == []
    skipped = sorted((c["check_id"], c["resource"].split(".")[0]) for c in results["skipped_checks"]
                     if "Clipia" in c["resource"])
    assert skipped == [("CKV_AWS_149", "AWS::SecretsManager::Secret")] * 2  # the key and the webhook secret
    assert all(len(c["check_result"].get("suppress_comment", "")) >= 60 for c in results["skipped_checks"])
    assert any("Clipia" in c["resource"] for c in results["passed_checks"])
