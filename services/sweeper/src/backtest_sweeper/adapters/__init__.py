"""The sweeper's adapters: MongoDB and NATS."""
