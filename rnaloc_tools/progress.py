"""Progress bars on stderr, only when stderr is a terminal.

Set ``RNALOC_NO_PROGRESS=1`` to turn them off everywhere (HPC and Galaxy logs
stay clean without it too, since their stderr is not a terminal).
"""

import os
import sys

from tqdm.auto import tqdm


def progress_enabled():
    if os.environ.get("RNALOC_NO_PROGRESS", "").strip() not in ("", "0"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(iterable=None, *, total=None, desc=None, unit="seq"):
    """A tqdm bar on stderr, or a silent pass-through when progress is off."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        disable=not progress_enabled(),
        dynamic_ncols=True,
    )
