"""message-triage: every patient message to the right pool, urgent ones to a person at once."""

from clinicflow.automations.triage.automation import AUTOMATION, ESCALATION_AUTOMATION

__all__ = ["AUTOMATION", "ESCALATION_AUTOMATION"]
