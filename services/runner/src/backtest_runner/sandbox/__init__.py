"""The hardened sandbox: limits, output accounting, failure classification and the Docker adapter."""
