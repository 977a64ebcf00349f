"""Effect handlers the engine brings itself: `work_item.open`."""

from __future__ import annotations

from collections.abc import Mapping

from clinicflow.engine.handlers import EffectCall, HandlerEnv, register_effect_handler
from clinicflow.engine.payloads import WORK_ITEM_OPEN, WorkItemRequest
from clinicflow.engine.states import Delivery
from clinicflow.engine.workitems import open_work_item


class WorkItemOpenHandler:
    """Opens the work item a run asked for, in the transaction that marks the effect done."""

    reaches_patient = False
    transactional = True

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
        """Open the work item (idempotent by the effect's key)."""
        request = WorkItemRequest.from_payload(call.payload)
        opened = open_work_item(
            env.session,
            env.cipher,
            key=call.key,
            pool=request.pool,
            description=request.description,
            actor=f"automation:{call.automation}",
            now=env.clock.now(),
            priority=request.priority,
            due_at=request.due_at,
            focus=request.focus,
            for_ref=request.for_ref,
            source_run_id=call.run_id,
            source_effect_key=call.key,
        )
        return {"work_item_id": opened.id}

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:  # noqa: ARG002  (protocol)
        """Never asked: a transactional effect that is not done did not happen."""
        return Delivery.NOT_DELIVERED


register_effect_handler(WORK_ITEM_OPEN, WorkItemOpenHandler())
