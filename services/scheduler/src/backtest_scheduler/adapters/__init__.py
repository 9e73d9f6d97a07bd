"""Adapters of the scheduler's ports, named after their technology."""
