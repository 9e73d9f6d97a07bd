"""Adapters of the results writer's ports, named after their technology."""
