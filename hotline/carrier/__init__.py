"""A virtual Twilio voice carrier: drives whole calls through the hotline's webhooks.

Used by the test-suite and by the `hotline call` terminal phone.
"""

from hotline.carrier.callers import (
    HANG_UP,
    BridgeEnd,
    BridgeInfo,
    BridgingCaller,
    Caller,
    GatherInfo,
    HangUp,
    Heard,
    QueueChoice,
    QueueInfo,
    QueuePlan,
    RecordInfo,
    Recording,
    ScriptedCaller,
)
from hotline.carrier.carrier import (
    APPLICATION_ERROR_MESSAGE,
    DEFAULT_ACCOUNT_SID,
    CallRecord,
    Dequeued,
    Exchange,
    NotQueued,
    QueueNotFound,
    QueueResult,
    Signing,
    VirtualCarrier,
    WebhookResponse,
    compute_signature,
)
from hotline.carrier.terminal import TerminalCaller, run_terminal_call

__all__ = [
    "APPLICATION_ERROR_MESSAGE",
    "DEFAULT_ACCOUNT_SID",
    "HANG_UP",
    "BridgeEnd",
    "BridgeInfo",
    "BridgingCaller",
    "CallRecord",
    "Caller",
    "Dequeued",
    "Exchange",
    "GatherInfo",
    "HangUp",
    "Heard",
    "NotQueued",
    "QueueChoice",
    "QueueInfo",
    "QueueNotFound",
    "QueuePlan",
    "QueueResult",
    "RecordInfo",
    "Recording",
    "ScriptedCaller",
    "Signing",
    "TerminalCaller",
    "VirtualCarrier",
    "WebhookResponse",
    "compute_signature",
    "run_terminal_call",
]
