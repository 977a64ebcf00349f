"""Ways to reach patients: SMS and e-mail. For now only the sandbox, which writes to an outbox."""

from clinicflow.channels.sandbox import (
    OutboxMessage,
    SandboxMessageHandler,
    deliveries_of,
    list_outbox,
)

__all__ = ["OutboxMessage", "SandboxMessageHandler", "deliveries_of", "list_outbox"]
