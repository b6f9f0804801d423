"""Which account and region a deploy command would change, and the user's yes before it does.

The AWS CLI and SAM pick the region from ``AWS_REGION``, then
``AWS_DEFAULT_REGION``, then the ``region`` of the active profile in
``~/.aws/config`` (``AWS_CONFIG_FILE``, ``AWS_PROFILE``). Falling back to
us-east-1 instead would deploy a user whose CLI says eu-west-1 into the wrong
region without a word, so the tooling resolves the region the same way, passes
it explicitly to every command, prints where it came from, and stops when
there is none.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from tools.deploy_inputs import YES_WORDS, InputError
from tools.deploy_inputs import region as checked_region


@dataclass(frozen=True)
class Region:
    name: str
    source: str  # where it came from, as the user would look for it


def resolve_region(explicit: str | None, environ: Mapping[str, str] | None = None) -> Region:
    """The region the AWS CLI would use: flag, environment, then the profile's ``region``."""
    env = os.environ if environ is None else environ
    if explicit:
        return Region(checked_region(explicit, "--region"), "--region")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            return Region(checked_region(env[name], name), name)
    profile = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    config_file = env.get("AWS_CONFIG_FILE") or "~/.aws/config"
    from botocore.exceptions import ProfileNotFound
    from botocore.session import Session

    session = Session()  # reads AWS_PROFILE and AWS_CONFIG_FILE itself, as the CLI does
    try:
        configured = session.get_scoped_config().get("region")
    except ProfileNotFound:
        raise InputError(f"AWS profile {profile!r} is not in {config_file}") from None
    if not configured:
        raise InputError(
            f"no AWS region: set AWS_REGION=<region> or `aws configure set region <region>` (profile {profile!r})"
        )
    return Region(checked_region(configured, f"region of profile {profile!r}"), f"profile {profile!r} in {config_file}")


class Confirmation:
    """Asks once, before the first command that changes something, unless told yes up front.

    Without a terminal there is nobody to ask, and silence must not count as
    yes: such runs need ``--yes`` (``YES=1``).
    """

    def __init__(
        self,
        assume_yes: bool,
        ask: Callable[[str], str] | None = None,
        interactive: bool | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.granted = assume_yes
        self._ask = ask or input
        self._interactive = sys.stdin.isatty() if interactive is None else interactive
        self._err = err or sys.stderr

    def require(self, what: str) -> None:
        if self.granted:
            return
        if not self._interactive:
            raise InputError(f"{what}: not on a terminal, so nothing was changed; pass --yes (make ... YES=1)")
        print(f"{what}?", file=self._err, flush=True)
        answer = self._ask("Type yes to go ahead, anything else stops: ")
        if answer.strip().lower() not in YES_WORDS:
            raise InputError("stopped at the confirmation; nothing was changed")
        self.granted = True
