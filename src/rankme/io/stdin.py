"""Standard input, read so that a signal stops the wait (``rankme score -``)."""

from __future__ import annotations

import io
import os
import select
import sys
from typing import Any

__all__ = ["read_stdin"]


def read_stdin(stream: Any = None) -> bytes:
    """All of ``stream`` (standard input's bytes by default), read so that Ctrl-C and SIGTERM stop the wait at once.
    A blocking read is interrupted only when the signal reaches the main thread; with BLAS or OpenMP worker threads
    running, the kernel may deliver it to one of them and the read would wait on for ever. Here the main thread
    waits at most 0.2 s at a time, and Python runs the signal's handler between waits.

    Examples:
        >>> r, w = os.pipe(); _ = os.write(w, b"abc"); os.close(w)
        >>> with open(r, "rb") as pipe:
        ...     read_stdin(pipe)
        b'abc'
    """
    stream = sys.stdin.buffer if stream is None else stream
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):  # a replaced stdin (a notebook, pytest's capture)
        return stream.read()
    if os.name == "nt":
        return stream.read()  # Windows: select() takes sockets only
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
