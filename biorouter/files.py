"""Writing a file so that no reader ever sees half of it.

The encoder cache (exported models, embedded utterances) is shared by every process of a
checkout: proxy replicas starting together, a CLI command beside a running proxy. Each file is
written under a temporary name in its own folder and renamed over the target only once it is
complete; a failed write leaves the old file (or none) and no debris.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replaced_atomically"]


@contextmanager
def replaced_atomically(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; it becomes ``target`` when the block succeeds.

    The result is readable by everyone (mode 0644): ``mkstemp``'s 0600 would hide a shared
    cache from the other users of an installation.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=target.suffix)
    os.close(handle)
    try:
        yield Path(partial)
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
