"""The bloom46 lm-eval tasks: YAML, the generator and the local data loader (utils.py)."""
