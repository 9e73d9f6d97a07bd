"""The engine's data model: candles, a run's config, its result and trades, time ranges."""
