"""Hand-written fakes of the gateway's ports, for the gateway's and the CLI's tests (never used in `src`).

Loaded under the unique name ``gateway_fakes`` by services/gateway/tests/conftest.py and
cli/tests/conftest.py (``backtest_testinfra.load_by_path``): ``from gateway_fakes import InMemoryTaskStore``.
"""

from .marketdata import InMemoryMarketData
from .messaging import InMemoryEventFeed, RecordingCommandBus
from .quotas import InMemoryQuotaStore
from .strategies import InMemoryStrategyStore
from .sweeps import InMemorySweepStore
from .tasks import InMemoryTaskStore

__all__ = [
    "InMemoryEventFeed",
    "InMemoryMarketData",
    "InMemoryQuotaStore",
    "InMemoryStrategyStore",
    "InMemorySweepStore",
    "InMemoryTaskStore",
    "RecordingCommandBus",
]
