"""NATS JetStream helpers shared by the services (never by `backtest_core`, which stays broker-free).

Only services import this package: one declaration of the platform's streams and one name for the
de-duplication header, instead of a copy of each per service.
"""

from backtest_messaging.event_headers import (
    EVENT_ENVELOPE_HEADER,
    MSG_SIZE_HEADER,
    event_headers,
    publish_headers,
)
from backtest_messaging.streams import (
    ELECTION_ERRORS,
    MSG_ID_HEADER,
    STREAM_NAME_IN_USE,
    declare_streams,
    stream_config,
)

__all__ = [
    "ELECTION_ERRORS",
    "EVENT_ENVELOPE_HEADER",
    "MSG_ID_HEADER",
    "MSG_SIZE_HEADER",
    "STREAM_NAME_IN_USE",
    "declare_streams",
    "event_headers",
    "publish_headers",
    "stream_config",
]
