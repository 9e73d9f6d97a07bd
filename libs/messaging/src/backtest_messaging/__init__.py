"""NATS JetStream helpers shared by the services (never by `backtest_core`, which stays broker-free).

Only services import this package: one declaration of the platform's streams and one name for the
de-duplication header, instead of a copy of each per service.
"""

from backtest_messaging.streams import MSG_ID_HEADER, STREAM_NAME_IN_USE, declare_streams, stream_config

__all__ = ["MSG_ID_HEADER", "STREAM_NAME_IN_USE", "declare_streams", "stream_config"]
