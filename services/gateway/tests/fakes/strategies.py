"""InMemoryStrategyStore: the gateway's StrategyStore port over dicts, every version kept."""

from __future__ import annotations

from collections import defaultdict

from backtest_gateway.ports import StrategyPage, StrategyRecord


class InMemoryStrategyStore:
    """The latest version of each strategy keyed by (user_id, name), and every version in `history`."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], StrategyRecord] = {}
        self.history: dict[tuple[str, str], dict[int, StrategyRecord]] = defaultdict(dict)

    async def insert(self, record: StrategyRecord) -> bool:
        """Store unless the name is taken for that user (or that version was ever stored)."""
        key = (record.user_id, record.name)
        if key in self.records or record.version in self.history[key]:
            return False
        self.records[key] = record
        self.history[key][record.version] = record
        return True

    async def get(self, user_id: str, name: str) -> StrategyRecord | None:
        """Return the latest version or None."""
        return self.records.get((user_id, name))

    async def get_version(self, user_id: str, name: str, version: int) -> StrategyRecord | None:
        """Return one stored version or None."""
        return self.history.get((user_id, name), {}).get(version)

    async def versions(self, user_id: str, name: str) -> list[StrategyRecord]:
        """Return every stored version, oldest first."""
        stored = self.history.get((user_id, name), {})
        return [stored[v] for v in sorted(stored)]

    async def page(self, user_id: str | None, limit: int, offset: int) -> StrategyPage:
        """Return records sorted by user, then name."""
        matches = sorted(
            (r for r in self.records.values() if user_id is None or r.user_id == user_id),
            key=lambda r: (r.user_id, r.name),
        )
        return StrategyPage(items=matches[offset : offset + limit], total=len(matches))

    async def replace(self, record: StrategyRecord, expected_version: int) -> bool:
        """Add the version if the latest one matches."""
        key = (record.user_id, record.name)
        stored = self.records.get(key)
        if stored is None or stored.version != expected_version or record.version in self.history[key]:
            return False
        self.records[key] = record
        self.history[key][record.version] = record
        return True

    async def delete(self, user_id: str, name: str) -> bool:
        """Delete the latest-version entry (the history stays); False if absent."""
        return self.records.pop((user_id, name), None) is not None

    async def count(self, user_id: str) -> int:
        """Count the user's records."""
        return sum(1 for u, _ in self.records if u == user_id)
