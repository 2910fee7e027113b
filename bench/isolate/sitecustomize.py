"""Imported at start-up by the processes of a revision benchmarked from its own checkout
(bench/run.py, `--compare`). This venv's editable install maps the project's packages to
the current checkout, so a module the revision lacks (one added since) would be found
there and mixed into the revision's code. The mapping is taken out: each checkout runs its
own code only."""

import sys


def _editable(hook: object) -> bool:
    name = getattr(hook, "__qualname__", "") or type(hook).__qualname__
    return name.startswith("_Editable")


sys.meta_path[:] = [finder for finder in sys.meta_path if not _editable(finder)]
sys.path_hooks[:] = [hook for hook in sys.path_hooks if not _editable(hook)]
