# -*- test-case-name: tests.test_fileio -*-
"""
Durable file writes (DESIGN.md rule 2): temp file, write, fsync, rename,
fsync the folder.  A crash leaves the old file or the new one, never half.
Temp files start with TMP_PREFIX so that recovery can sweep them.
"""

import os
import secrets

TMP_PREFIX = ".tmp-"


def fsync_dir(path):
    """fsync a folder so that a rename in it is durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(folder, data):
    """
    Write C{data} to a new temp file in C{folder} and fsync it.

    @return: the temp file's path.
    """
    tmp = os.path.join(folder, "%s%s" % (TMP_PREFIX, secrets.token_hex(8)))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def atomic_write(path, data, sync_dir=True):
    """Replace C{path} with C{data} durably."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = write_temp(folder, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(folder)


def sweep_temp(root):
    """
    Remove temp files left under C{root} by a crash.

    @return: the number removed.
    """
    removed = 0
    for folder, dirs, files in os.walk(root):
        for name in files:
            if name.startswith(TMP_PREFIX):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
