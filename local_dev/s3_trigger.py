"""The S3 trigger's rules: which objects of the bucket invoke the function.

One source for both sides: ``make s3-trigger`` (tools/deploy.py) turns these
rules into the bucket's ``LambdaFunctionConfigurations`` entry on AWS, and the
local S3 event bridge (:mod:`local_dev.s3_bridge`) applies the same rules to
what the local S3 reports. template.yaml's ``EnableS3Trigger`` describes them:
new ``*.pdf`` under ``Prefix`` (the same value as the function's ``PREFIX``).
The manifests the function writes (``manifests/....jsonl``) match neither the
prefix nor the suffix, so the function's own output never triggers it.

Matching is S3's: the event name against the configured types (``*`` as the
last part matches any), the prefix and suffix against the object key as stored
(not URL-encoded), case-sensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PDF_SUFFIX = ".pdf"
OBJECT_CREATED = "s3:ObjectCreated:*"


@dataclass(frozen=True)
class TriggerRules:
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def filter_rules(self) -> list[dict[str, str]]:
        """S3's ``Filter.Key.FilterRules``: only the rules that are set."""
        rules = [{"Name": "prefix", "Value": self.prefix}] if self.prefix else []
        return [*rules, *([{"Name": "suffix", "Value": self.suffix}] if self.suffix else [])]

    def notification(self, notification_id: str, function_arn: str) -> dict[str, Any]:
        """One ``LambdaFunctionConfigurations`` entry, as put-bucket-notification-configuration takes it."""
        entry: dict[str, Any] = {"Id": notification_id, "LambdaFunctionArn": function_arn, "Events": list(self.events)}
        if self.prefix or self.suffix:
            entry["Filter"] = {"Key": {"FilterRules": self.filter_rules()}}
        return entry

    def event_matches(self, event_name: str) -> bool:
        """``s3:ObjectCreated:Put`` against ``s3:ObjectCreated:*`` (S3 names events with the ``s3:`` prefix here)."""
        name = event_name if event_name.startswith("s3:") else f"s3:{event_name}"
        for pattern in self.events:
            if pattern == name or (pattern.endswith(":*") and name.startswith(pattern[:-1])):
                return True
        return False

    def key_matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)

    def describe(self) -> str:
        where = f"under {self.prefix!r}" if self.prefix else "anywhere in the bucket"
        ending = f"ending in {self.suffix!r}" if self.suffix else "of any name"
        return f"{', '.join(self.events)} for keys {where} {ending}"


def trigger_rules(prefix: str) -> TriggerRules:
    """The function's trigger: every new PDF under the prefix it scans."""
    return TriggerRules(events=(OBJECT_CREATED,), prefix=prefix, suffix=PDF_SUFFIX)
