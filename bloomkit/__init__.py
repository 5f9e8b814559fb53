"""bloomkit: build, train, tune and evaluate BLOOM-style multilingual language models.

The stage packages live in top-level folders of the repository and are mapped under this
namespace by ``setup.py`` (``package_dir``): ``bloomkit.data_tooling``, ``bloomkit.pretraining``,
``bloomkit.finetuning``, ``bloomkit.eval`` and ``bloomkit.slurm``. This package holds only
what every stage shares: the CLI root, typed config loading, run directories, the console
and the demo.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bloomkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
