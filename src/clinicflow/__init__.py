"""clinicflow: automations that take repetitive administrative work off medical practices."""

__version__ = "0.1.0"
