"""Check every value the deploy tooling hands to ``sam`` and ``aws`` before any command runs.

The deploy targets run with a user's real credentials, so a value that means
something other than what it looks like must stop the run, not change it: a
misspelt ``DRY_RUN`` must never deploy, a stack name must never smuggle in an
option, an IAM wildcard must never widen the role. Values travel as argv
elements (never through a shell), so these checks are about what ``sam``,
CloudFormation and IAM would make of a value, not about quoting.

Each check returns the value unchanged or raises :class:`InputError` with a
one-line message naming the make variable to fix.
"""

from __future__ import annotations

import json
import re

from local_runtime import display
from pdf_manifest.scan_request import MAX_KEY_BYTES  # S3's limit on a key, and so on a prefix

# The spellings people use for yes and no; anything else is refused rather
# than read as "no", because "no" is the dangerous answer for DRY_RUN.
YES_WORDS = frozenset({"1", "true", "yes", "y", "on"})
NO_WORDS = frozenset({"", "0", "false", "no", "n", "off"})

MAX_SHOWN = 60  # characters of a refused value echoed back in an error


class InputError(ValueError):
    """A value the deploy tooling will not pass on; the message names the setting."""


def shown(value: str) -> str:
    """The value as an error message quotes it: a bounded, escaped literal."""
    return display.shown(value, MAX_SHOWN, quoted=True)


def flag(name: str, raw: str | None) -> bool:
    """A yes/no setting such as ``DRY_RUN``; unset or empty is no, a spelling we do not know is an error."""
    word = (raw or "").strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    raise InputError(
        f"{name}={shown(raw or '')} is neither yes nor no: use {name}=1 (or true/yes/on) or leave it unset"
    )


def _matching(name: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    if not pattern.fullmatch(value):
        raise InputError(f"{name}={shown(value)} is not {rule}")
    return value


# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name(value: str, name: str = "BUCKET_NAME") -> str:
    """A general purpose bucket name as S3 accepts it."""
    _matching(name, value, _BUCKET, "a bucket name (3-63 lowercase letters, digits, '.' and '-')")
    if ".." in value or _IP_ADDRESS.fullmatch(value):
        raise InputError(f"{name}={shown(value)} is not a bucket name (no '..', not an IP address)")
    if value.startswith(_BUCKET_RESERVED_PREFIXES) or value.endswith(_BUCKET_RESERVED_SUFFIXES):
        raise InputError(f"{name}={shown(value)} uses a prefix or suffix S3 reserves")
    return value


# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cfn-using-console-create-stack-parameters.html
_STACK = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def stack_name(value: str) -> str:
    return _matching("STACK_NAME", value, _STACK, "a stack name (a letter, then letters, digits and '-')")


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def region(value: str, name: str = "AWS_REGION") -> str:
    return _matching(name, value, _REGION, "an AWS region such as eu-west-1")


_PARTITION = r"arn:aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
_KMS_KEY_ARN = re.compile(_PARTITION + r":kms:[a-z0-9-]+:\d{12}:key/(?:mrk-)?[A-Za-z0-9-]{1,64}")
_STATE_MACHINE_ARN = re.compile(_PARTITION + r":states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}")
# A function name, or its full or partial ARN without a qualifier.
_FUNCTION = re.compile(
    r"(?:" + _PARTITION + r":lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?[A-Za-z0-9_-]{1,64}"
)
_QUALIFIER = re.compile(r"(?:[1-9][0-9]*|[A-Za-z_][A-Za-z0-9_-]{0,127})")


def kms_key_arn(value: str) -> str:
    """A key ARN (not an alias): the role's policy names the key, and IAM matches key ARNs only."""
    return _matching("KMS_KEY_ARN", value, _KMS_KEY_ARN, "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")


def state_machine_arn(value: str) -> str:
    return _matching("--state-machine-arn", value, _STATE_MACHINE_ARN, "a state machine ARN")


def function_name(value: str) -> str:
    return _matching("--function-name", value, _FUNCTION, "a Lambda function name or ARN")


def qualifier(value: str, name: str = "--qualifier") -> str:
    return _matching(name, value, _QUALIFIER, "a version number or alias name")


def version(value: str) -> str:
    """A published version number: rolling back to ``$LATEST`` would pin unpublished code."""
    return _matching("TO_VERSION", value, re.compile(r"[1-9][0-9]{0,9}"), "a published version number (1, 2, ...)")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def prefix(value: str, name: str = "PREFIX") -> str:
    """A key prefix that travels as data (an event or execution input): any key text, no control characters."""
    if _CONTROL.search(value):
        raise InputError(f"{name}={shown(value)} contains a control character")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{name}={shown(value)} is not valid Unicode text") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InputError(f"{name} is {len(encoded)} bytes; S3 keys stop at {MAX_KEY_BYTES}")
    return value


# S3's "safe characters" for keys, without '*' and "'": IAM reads '*' and '?' in
# a resource ARN as wildcards (SCOPE_PREFIX='*' would open the whole bucket),
# '$' starts a policy variable, and SAM's --parameter-overrides splits on
# spaces and treats quotes as syntax.
_TEMPLATE_PREFIX = re.compile(r"[A-Za-z0-9!_.()/-]*")


def template_prefix(value: str, name: str) -> str:
    """A prefix that becomes a template parameter, and from there part of IAM policies and S3 filters."""
    prefix(value, name)
    return _matching(
        name, value, _TEMPLATE_PREFIX, "usable in the template (letters, digits and / ! - _ . ( ) only; no * or spaces)"
    )


def prefix_list(raw: str, name: str = "PREFIXES") -> list[str]:
    """``PREFIXES`` as make passes it: words split on whitespace, or a JSON array for prefixes with spaces."""
    text = raw.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name} starts with '[' but is not a JSON array: {exc.msg}") from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise InputError(f"{name} must be a JSON array of strings")
    else:
        items = text.split()
    if not items:
        raise InputError(f"name at least one prefix: {name}='2026/01/ 2026/02/'")
    for item in items:
        if not item:
            raise InputError(f"{name} holds an empty prefix")
        prefix(item, name)
    return items


_DECIMAL = re.compile(r"[0-9]{1,7}")


def template_setting(name: str, value: str, spec: dict[str, object]) -> str:
    """A value for a template parameter, checked against that parameter's own rules in template.yaml.

    ``spec`` is the parameter's declaration (``Type``, ``MinValue``, ``MaxValue``,
    ``AllowedValues``), so make and CloudFormation refuse the same values and the
    template stays the one place the limits are written.
    """
    allowed = spec.get("AllowedValues")
    if isinstance(allowed, list):
        choices = [str(choice) for choice in allowed]
        if value not in choices:
            raise InputError(f"{name}={shown(value)} is not one of {', '.join(choices)}")
        return value
    if spec.get("Type") == "Number":
        _matching(name, value, _DECIMAL, "a whole number")
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (isinstance(low, int) and int(value) < low) or (isinstance(high, int) and int(value) > high):
            raise InputError(f"{name}={value} is outside {low}..{high}")
        return str(int(value))
    return value
