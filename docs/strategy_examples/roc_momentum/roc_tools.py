"""A helper module of the roc_momentum package: the rate of change both signal paths use."""

import numpy as np


def rate_of_change(closes: np.ndarray, bars: int) -> np.ndarray:
    """Return closes[i] / closes[i - bars] - 1 for every i >= bars (a fraction; len(closes) - bars values)."""
    return closes[bars:] / closes[:-bars] - 1.0
