"""Reading a small text file a user hands to the dataflow tools (a hardware file, a mapping).

The bytes come through `nnsim.checkpoint.safefile.read_regular` (regular files
only, bounded read), but its messages speak of checkpoints; here a refusal
names the file and what it was meant to be, as one line of the caller's own
error class.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnsim.checkpoint.safefile import kind_of, read_regular
from nnsim.errors import CheckpointError, NnsimError


def read_text(path: str | os.PathLike, what: str, limit: int, error: type[NnsimError]) -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``limit`` bytes), or ``error``."""
    path = Path(path)
    try:
        data = read_regular(path, what, limit, follow_links=True)
    except FileNotFoundError:
        raise error(f"{what} '{path}' does not exist") from None
    except CheckpointError as refused:
        raise error(_why(path, what, limit, refused)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} '{path}' is not UTF-8 text") from None


def _why(path: Path, what: str, limit: int, refused: CheckpointError) -> str:
    try:
        found = os.stat(path)
    except OSError:
        return str(refused)
    if not os.path.isfile(path):
        return f"{what} '{path}' is {kind_of(found.st_mode)}, not a regular file"
    if found.st_size > limit:
        return f"{what} '{path}' is larger than {limit:,} bytes; it cannot be a {what}"
    return str(refused)
