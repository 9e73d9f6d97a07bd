"""Adapters of the gateway's ports, named after their technology."""
