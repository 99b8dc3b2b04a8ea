"""Files: written so that no reader ever sees half of one, and named the way a user wrote them.

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

__all__ = ["display_path", "replaced_atomically"]


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


def display_path(path: Path, root: Path | None) -> str:
    """``path`` as error messages show it: relative to ``root`` (the biorouter home) when inside it,
    else as it is (a folder configured elsewhere, e.g. ``utterances_dir: /shared/utterances``)."""
    if root is None:
        return str(path)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
