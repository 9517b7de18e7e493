"""Small programs with real concurrency bugs, used by `python -m concurrency demo`."""
