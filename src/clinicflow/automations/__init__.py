"""Automations that ship with clinicflow; each registers through the `clinicflow.automations` entry
point."""
