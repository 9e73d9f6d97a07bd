"""Parameter sweeps over all cores and the statistics that ask whether the winner is luck."""
