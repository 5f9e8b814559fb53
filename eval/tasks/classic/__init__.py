"""The bloom-classic lm-eval tasks (generated from lm-eval's own) and their data loader."""
