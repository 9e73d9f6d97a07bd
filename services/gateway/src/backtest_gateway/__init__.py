"""The gateway service: REST and WebSocket over the platform's NATS commands and MongoDB state."""
