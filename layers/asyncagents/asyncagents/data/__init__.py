"""Data access: one class per AWS resource, clients injected, AWS error codes turned into domain errors."""
