"""Adapters of the runner's ports, named after their technology."""
