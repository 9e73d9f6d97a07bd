"""The sweeper: the one owner of sweep state."""
