"""Writing files so that a crash or a kill never leaves half of one: a temporary sibling, then a rename.

A temporary's name says who writes it, `.NAME.HOST.PID.XXXXXXXX.partial`, so that several processes (tools/
encode.py --shard runs, on one machine or on several sharing a folder) can write into one folder and remove
what killed writers left there without deleting each other's writes in progress.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
WRITER = re.compile(r"\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[a-z0-9_]+\.partial$")  # of make_partial's names
# Another machine's processes cannot be checked, so its temporaries are left until they are this old (in
# seconds). A write takes seconds (a bundle is a few MB) and keeps its temporary's time fresh as it goes; a day
# also leaves room for the clocks of machines that share a folder to disagree by hours.
STALE_AFTER = 24 * 3600


def this_host() -> str:
    """This machine's name as temporaries carry it: letters, digits and hyphens (a dot would split it)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "unknown"


def make_partial(folder: Path, name: str) -> tuple[int, str]:
    """Create `.NAME.HOST.PID.XXXXXXXX.partial` in `folder` for this process; return mkstemp's (fd, path)."""
    return tempfile.mkstemp(dir=folder, prefix=f".{name}.{this_host()}.{os.getpid()}.", suffix=PARTIAL_SUFFIX)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to a hidden temporary beside `path` (make_partial), then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_partial(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; a static host must be able to read what it serves
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_atomic(source: Path, target: Path, mode: int = 0o644) -> None:
    """Copy `source` to `target` through a hidden temporary sibling and a rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_partial(target.parent, target.name)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def process_alive(pid: int) -> bool:
    """Whether a process of this machine runs with this id (a zombie counts as running)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows: assume alive; STALE_AFTER cleans up
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # another user's process
    return True


def writer_gone(path: Path) -> bool:
    """Whether the process that wrote this temporary can no longer finish it."""
    writer = WRITER.search(path.name)
    if writer is None:
        return True  # an older samtab's name, which says no writer: left by a killed run
    try:
        if time.time() - path.stat().st_mtime > STALE_AFTER:
            return True  # whoever wrote it (or a process that reused its id) is not writing it any more
    except FileNotFoundError:
        return False  # just renamed into place by its writer
    return writer["host"] == this_host() and not process_alive(int(writer["pid"]))


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the temporaries of writes killed before their rename (see writer_gone); return what was removed.

    Another writer's temporaries are left alone while it may still be writing: a process of this machine that
    is running, or any process of another machine, until its temporary is STALE_AFTER old.
    """
    removed = []
    for path in Path(folder).glob(f".*{PARTIAL_SUFFIX}"):
        if writer_gone(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
