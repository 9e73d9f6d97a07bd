"""The runner service: pulls RunBacktestJob from JetStream and runs each in a hardened Docker sandbox.

Run it with `python -m backtest_runner` (or `backtest-runner`); settings come from RUNNER_* variables
(see `settings.RunnerSettings`). Layers: `service` (job loop) -> `executor` (one job) -> `ports`;
adapters: `sandbox.docker_sandbox.DockerSandbox` (the only Docker SDK user), `adapters.nats_jetstream`,
`adapters.mongo_candles.MongoCandleSource`.
"""
