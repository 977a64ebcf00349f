"""Appointment reminders: touchpoints, quiet hours, templates, and the automation."""
