"""Typed errors raised by the engine; each message says what was expected and what it was."""


class BacktestError(Exception):
    """Base class of every error the engine raises on purpose."""

    ends_run = False  # True: no further job or trial of this run may go on (the run is broken)


class DataError(BacktestError):
    """Candle data is missing, malformed or inconsistent."""


class ConfigError(BacktestError):
    """A backtest setting is invalid."""


class StrategyLoadError(BacktestError):
    """A strategy could not be found, compiled or instantiated."""


class StrategyRuntimeError(BacktestError):
    """A strategy raised while deciding; carries the user's traceback text."""

    def __init__(self, message: str, traceback_text: str) -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


class OrderError(StrategyRuntimeError):
    """A strategy proposed an order that cannot make sense (a long's take-profit below its entry ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "")
