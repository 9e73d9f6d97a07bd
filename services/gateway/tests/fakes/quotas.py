"""InMemoryQuotaStore: the gateway's QuotaStore port over a dict (one process's view of the quotas)."""

from __future__ import annotations

from typing import Any

from backtest_gateway.ports import QuotaChange


class InMemoryQuotaStore:
    """Quota entries in a dict: one process's view, as one gateway alone would see them."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}

    async def change(self, key: str, change: QuotaChange) -> Any:
        new_value, result = change(self.entries.get(key))
        if new_value is None:
            self.entries.pop(key, None)
        else:
            self.entries[key] = new_value
        return result
