"""The URLs the hotline's TwiML and REST calls point Twilio at: the `/twilio` webhooks."""

from __future__ import annotations

from urllib.parse import urlencode

from ivr.actions import AgentTarget, OutboundHook, OutboundTarget, Target
from ivr.state import OutboundState

PREFIX = "/twilio"
# A placed call's status callback: not a flow's hook, since no TwiML answers it.
OUTBOUND_STATUS = "outbound-status"


def url_for(target: Target | AgentTarget | OutboundTarget) -> str:
    """Relative URLs: Twilio resolves them against the URL it just called."""
    return f"{PREFIX}/{target.hook.value}?{urlencode(target.state.to_params())}"


def absolute(base: str, target: Target | AgentTarget | OutboundTarget) -> str:
    """An absolute URL, for the REST API (nothing called before it to resolve against)."""
    return base.rstrip("/") + url_for(target)


def placed_call(public_url: str, job: int, lang: str) -> str:
    """Where Twilio asks for TwiML when a call the hotline placed is answered: absolute,
    since nothing called before it."""
    return absolute(
        public_url, OutboundTarget(OutboundHook.ANSWER, OutboundState(job=job, lang=lang))
    )


def placed_call_status(public_url: str, job: int) -> str:
    return f"{public_url.rstrip('/')}{PREFIX}/{OUTBOUND_STATUS}?{urlencode({'job': job})}"
