"""S3 inbox rules: which model a file dropped under ``inbox/<prefix>`` of the intake bucket runs on.

:class:`InboxRule` checks one rule, :func:`check_inbox_rules` a set of them (distinct, non-nested prefixes that
fit the intake function's environment) and :func:`inbox_rules_json` is what the intake function reads
(``MEDIAGEN_INBOX_RULES``). :data:`DEFAULT_INBOX_RULES` are the rules of ``MediaGen-<stage>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The room the intake function's environment leaves for ``MEDIAGEN_INBOX_RULES``: Lambda allows 4 KB for all
#: variables together, and the names, ARNs, URLs and Powertools settings take about 1 KB.
INBOX_RULES_MAX_BYTES = 3000

_INBOX_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*/?")
#: An output prefix: the characters a job's ``output.prefix`` may use (``mediagen.jobs.PREFIX_PATTERN``).
_OUTPUT_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()/=-]{1,512}")
#: A ``{placeholder}`` in a template string, and the ones the intake function fills in.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KNOWN_PLACEHOLDER = re.compile(r"object_url|key|filename|metadata\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class InboxRule:
    """An S3 inbox rule: each file put under ``inbox/<prefix>`` of the intake bucket becomes one job for ``model``.

    The intake function builds the job's request as ``{"model": model, "input": input_template}`` with these
    placeholders filled in, in every string value (nested ones too):

    * ``{object_url}``: the file (required somewhere): the job records its ``s3://`` URI and submit hands the
      provider a presigned URL of it;
    * ``{key}``: the object key; ``{filename}``: its last path segment;
    * ``{metadata.NAME}``: the object's user metadata ``NAME`` (``x-amz-meta-NAME``).

    Attributes:
        prefix: key prefix under ``inbox/`` (letters, digits, ``.``, ``_``, ``-``, ``/``; no leading ``/``);
            a missing trailing ``/`` is added.
        model: the catalog model the jobs run on.
        input_template: the request's ``input`` for every file.
        output_prefix: where the jobs' results go in the outputs bucket; ``""``: ``results/inbox/<prefix>``.
    """

    prefix: str
    model: str
    input_template: Mapping[str, Any] = field(default_factory=dict)
    output_prefix: str = ""

    def __post_init__(self) -> None:
        """Raises: ValueError: the prefix is not a plain relative key prefix, the model is empty, the template
        never passes the file (``{object_url}``), uses an unknown placeholder or is not JSON, or the output
        prefix is not a relative key prefix (each message names the rule's prefix)."""
        if not _INBOX_PREFIX.fullmatch(self.prefix) or ".." in self.prefix:
            raise ValueError(f"inbox rule prefix {self.prefix!r}: use letters, digits, '.', '_', '-' and '/'")
        if not self.prefix.endswith("/"):
            object.__setattr__(self, "prefix", self.prefix + "/")
        if not self.model.strip():
            raise ValueError(f"inbox rule {self.prefix!r} has no model")
        if not isinstance(self.input_template, Mapping):
            raise ValueError(f"inbox rule {self.prefix!r}: input_template must be a JSON object")
        try:
            json.dumps(self.input_template)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"inbox rule {self.prefix!r}: input_template is not JSON ({exc})") from exc
        placeholders = set(_placeholders(self.input_template))
        if "object_url" not in placeholders:
            raise ValueError(f"inbox rule {self.prefix!r}: input_template never uses {{object_url}}, so the "
                             "jobs would never see the file; put it where the model takes its input")
        unknown = sorted(p for p in placeholders if not _KNOWN_PLACEHOLDER.fullmatch(p))
        if unknown:
            raise ValueError(f"inbox rule {self.prefix!r}: unknown placeholder(s) "
                             f"{', '.join('{' + p + '}' for p in unknown)}; use {{object_url}}, {{key}}, "
                             "{filename} or {metadata.NAME}")
        if self.output_prefix:
            if (not _OUTPUT_PREFIX.fullmatch(self.output_prefix) or ".." in self.output_prefix
                    or self.output_prefix.startswith("/")):
                raise ValueError(f"inbox rule {self.prefix!r}: output_prefix {self.output_prefix!r} must be a "
                                 "relative S3 key prefix")
            if not self.output_prefix.endswith("/"):
                object.__setattr__(self, "output_prefix", self.output_prefix + "/")

    @property
    def effective_output_prefix(self) -> str:
        """``output_prefix``, or ``results/inbox/<prefix>`` when it is empty."""
        return self.output_prefix or f"results/inbox/{self.prefix}"

    def to_json(self) -> dict[str, Any]:
        """The rule as the intake function reads it (one item of ``MEDIAGEN_INBOX_RULES``)::

            {"prefix": "upscale/", "model": "recraft-upscaler", "input_template": {"image": "{object_url}"},
             "output_prefix": "results/inbox/upscale/"}
        """
        return {
            "prefix": self.prefix,
            "model": self.model,
            "input_template": json.loads(json.dumps(self.input_template)),
            "output_prefix": self.effective_output_prefix,
        }


def _placeholders(value: Any) -> list[str]:
    """The ``{name}`` placeholders of every string in ``value`` (nested objects and arrays included)."""
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, Mapping):
        return [p for item in value.values() for p in _placeholders(item)]
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _placeholders(item)]
    return []


def inbox_rules_json(rules: Sequence[InboxRule]) -> str:
    """``MEDIAGEN_INBOX_RULES``: the rules' :meth:`InboxRule.to_json`, as one compact JSON array."""
    return json.dumps([rule.to_json() for rule in rules], separators=(",", ":"), ensure_ascii=False)


def check_inbox_rules(rules: Sequence[InboxRule]) -> None:
    """Check a set of rules: distinct, non-nested prefixes, and JSON that fits the intake function.

    Raises:
        ValueError: two prefixes are equal or nested (S3 refuses overlapping notifications of one bucket), or
            the rules' JSON exceeds :data:`INBOX_RULES_MAX_BYTES`.
    """
    prefixes = [rule.prefix for rule in rules]
    if len(prefixes) != len(set(prefixes)):
        raise ValueError("inbox_rules: two rules have the same prefix")
    for outer in prefixes:
        for inner in prefixes:
            if inner != outer and inner.startswith(outer):
                raise ValueError(f"inbox_rules: prefix {inner!r} is inside {outer!r}; S3 refuses overlapping "
                                 "notifications, so inbox rule prefixes may not be nested")
    size = len(inbox_rules_json(rules).encode())
    if size > INBOX_RULES_MAX_BYTES:
        raise ValueError(f"inbox_rules: {size} bytes of JSON; at most {INBOX_RULES_MAX_BYTES} fit in the intake "
                         "function's environment (Lambda allows 4 KB for all variables)")


#: The inbox rules of ``MediaGen-<stage>`` when the ``inboxRules`` context gives none (an embedding app's
#: ``MediaGenPipelineProps`` has no rules unless it passes these or its own).
DEFAULT_INBOX_RULES: tuple[InboxRule, ...] = (
    InboxRule("upscale/", "recraft-upscaler", {"image": "{object_url}"}),
    InboxRule("remove-bg/", "recraft-remove-bg", {"image": "{object_url}"}),
    InboxRule("transcribe/", "elevenlabs-speech-to-text", {"audio_url": "{object_url}"}),
    # wan-2-5 image-to-video: prompt from the file's x-amz-meta-prompt; the cheapest resolution and duration.
    InboxRule("animate/", "wan-2-5", {"prompt": "{metadata.prompt}", "image_url": "{object_url}",
                                      "resolution": "720p", "duration": "5"}),
)
