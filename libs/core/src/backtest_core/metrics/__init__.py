"""Performance statistics as pure functions of the equity curve and the closed trades."""
