"""Users, permissions, PHI encryption and the audit log."""
