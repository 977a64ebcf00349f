"""Automations the worker-process tests load with CLINICFLOW_EXTRA_AUTOMATIONS.

`test-batch` asks for BATCH_SIZE messages through `test.slow_message`, the sandbox channel with a
delay (CLINICFLOW_TEST_SEND_DELAY_S, default 0.2 s) so that a SIGKILL lands mid-batch.
"""

from __future__ import annotations

import os

from clinicflow.channels import SandboxMessageHandler
from clinicflow.engine import (
    Automation,
    Manual,
    OutgoingMessage,
    RunContext,
    Unit,
    message_key,
    register_effect_handler,
)
from clinicflow.engine.payloads import MessageChannel

SLOW_MESSAGE = "test.slow_message"
BATCH_SIZE = int(os.environ.get("CLINICFLOW_TEST_BATCH_SIZE", "24"))

register_effect_handler(
    SLOW_MESSAGE,
    SandboxMessageHandler(delay_s=float(os.environ.get("CLINICFLOW_TEST_SEND_DELAY_S", "0.2"))),
    replace=True,
)


def batch_key(i: int) -> str:
    """The effect key of message number `i`."""
    return message_key("test-batch", f"Patient/{i}", "once")


def _run(ctx: RunContext) -> None:
    for i in range(BATCH_SIZE):
        message = OutgoingMessage(
            MessageChannel.SMS,
            f"+1555010{i:04d}",
            "Your visit is tomorrow.",
            for_ref=f"Patient/{i}",
        )
        ctx.effects.record(
            SLOW_MESSAGE, key=batch_key(i), payload=message.to_payload(), summary="test sms"
        )
        ctx.count("message_sent")


BATCH = Automation(
    name="test-batch",
    summary="Send a batch of slow sandbox messages (tests only)",
    trigger=Manual(),
    run=_run,
    owner="front-desk",
    units=(Unit("message_sent", minutes_saved=1.0),),
)
