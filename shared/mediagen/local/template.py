"""Read the CDK-synthesized CloudFormation template and resolve the intrinsic functions the local stack
needs (``Fn::Join``, ``Fn::GetAtt``, ``Ref``, ``Fn::Sub`` with pseudo parameters).

The local stack runs *this* state machine definition, not a hand-written copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediagen.errors import ConfigurationError


class Template:
    """A synthesized template (``cdk.out/<Stack>.template.json``)."""

    def __init__(self, document: dict[str, Any], path: Path | None = None) -> None:
        self.document = document
        self.path = path
        self.resources: dict[str, dict[str, Any]] = document.get("Resources", {})

    @classmethod
    def load(cls, path: Path) -> Template:
        """Raises: ConfigurationError when the file is missing or not a template."""
        try:
            return cls(json.loads(path.read_text()), path)
        except FileNotFoundError as exc:
            raise ConfigurationError(f"{path} not found: run `python infra/app.py` (or `make demo`) first") from exc

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """``{logical_id: resource}`` for every resource of ``resource_type``."""
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(resource_type)
        if len(found) != 1:
            raise ConfigurationError(f"expected one {resource_type} in {self.path}, found {len(found)}")
        return next(iter(found.items()))

    def state_machine_definition(self, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str],
                                 pseudo: Mapping[str, str]) -> dict[str, Any]:
        """The state machine's definition with every intrinsic resolved.

        Args:
            refs: ``{logical_id: value}`` for ``Ref``.
            attrs: ``{(logical_id, attribute): value}`` for ``Fn::GetAtt``.
            pseudo: ``{"AWS::Region": …, "AWS::Partition": …, "AWS::AccountId": …}``.
        """
        _, machine = self.only("AWS::StepFunctions::StateMachine")
        props = machine["Properties"]
        raw = props.get("DefinitionString")
        if raw is None:
            return dict(props["Definition"])
        text = resolve(raw, refs, attrs, pseudo)
        substitutions = {k: resolve(v, refs, attrs, pseudo)
                         for k, v in props.get("DefinitionSubstitutions", {}).items()}
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", str(value))
        return json.loads(text)


def resolve(value: Any, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str],
            pseudo: Mapping[str, str]) -> Any:
    """Resolve CloudFormation intrinsics in ``value``.

    Raises:
        ConfigurationError: an intrinsic or a reference the local stack does not know.
    """
    if isinstance(value, list):
        return [resolve(v, refs, attrs, pseudo) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (name, arg), = value.items()
        if name == "Fn::Join":
            sep, parts = arg
            return str(sep).join(str(resolve(p, refs, attrs, pseudo)) for p in parts)
        if name == "Ref":
            if arg in pseudo:
                return pseudo[arg]
            if arg in refs:
                return refs[arg]
            raise ConfigurationError(f"the local stack cannot resolve Ref {arg}")
        if name == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            if (logical, attribute) in attrs:
                return attrs[(logical, attribute)]
            raise ConfigurationError(f"the local stack cannot resolve Fn::GetAtt {logical}.{attribute}")
        if name == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            def sub(m: re.Match[str]) -> str:
                key = m.group(1)
                if key in extra:
                    return str(resolve(extra[key], refs, attrs, pseudo))
                if key in pseudo:
                    return pseudo[key]
                if "." in key:
                    return str(resolve({"Fn::GetAtt": key.split(".", 1)}, refs, attrs, pseudo))
                return str(resolve({"Ref": key}, refs, attrs, pseudo))
            return re.sub(r"\$\{([^}!][^}]*)\}", sub, text)
    return {k: resolve(v, refs, attrs, pseudo) for k, v in value.items()}
