"""``python -m bloomkit.eval.lm_eval_cli …``: lm-eval's own ``lm_eval`` command, with bloomkit's
``bloomkit-megatron`` model registered first, so a checkpoint's scores reproduce outside
``bloomkit eval run`` (the record's ``reproduce`` command for the megatron backend)."""

import sys

from lm_eval.__main__ import cli_evaluate

import bloomkit.eval.models  # noqa: F401  (registers bloomkit-megatron with lm-eval)

if __name__ == "__main__":
    sys.exit(cli_evaluate())
