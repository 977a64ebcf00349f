"""A test-only plugin the reminder race tests load into `clinicflow worker` processes.

Loading it (CLINICFLOW_EXTRA_AUTOMATIONS=tests.automations.slow_outbox:AUTOMATION) swaps the
process's `message.send` handler for the real MessageRouter over a sandbox that takes
CLINICFLOW_TEST_SEND_DELAY_S seconds per message, as a provider's latency would, so that two
workers overlap on one batch and a SIGKILL lands mid-batch. Half the delay comes before the
message reaches the outbox and half after (the provider took it, its answer is on the way), so a
kill finds messages in both states. Every send-time check stays real.
Never imported by the tests themselves: it would slow every message.send in pytest's process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import clinicflow.channels.delivery  # noqa: F401  (registers the default router, replaced below)
from clinicflow.channels.delivery import MessageRouter
from clinicflow.channels.sandbox import SandboxMessageHandler
from clinicflow.engine import (
    Automation,
    EffectCall,
    HandlerEnv,
    Manual,
    RunContext,
    register_effect_handler,
)
from clinicflow.engine.payloads import MESSAGE_SEND

SEND_DELAY_ENV = "CLINICFLOW_TEST_SEND_DELAY_S"


class SlowSandbox(SandboxMessageHandler):
    """The sandbox outbox, `pause_s` slow: half before the message lands, half after."""

    def __init__(self, pause_s: float) -> None:
        super().__init__(delay_s=0.0)
        self.pause_s = pause_s

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
        """Wait, deliver to the outbox, wait again."""
        time.sleep(self.pause_s / 2)
        delivered = super().execute(call, env)
        time.sleep(self.pause_s / 2)
        return delivered


register_effect_handler(
    MESSAGE_SEND,
    MessageRouter(SlowSandbox(float(os.environ.get(SEND_DELAY_ENV, "0.05")))),
    replace=True,
)


def _run(ctx: RunContext) -> None:
    """Nothing: the registry needs an Automation to import this module by."""


AUTOMATION = Automation(
    name="test-slow-outbox",
    summary="Makes the sandbox outbox slow in this worker (tests only)",
    trigger=Manual(),
    run=_run,
    owner="front-desk",
)
