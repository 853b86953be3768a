"""The command line as a user meets it: a subprocess behind a pseudo-terminal or a pipe.

``piped(...)`` runs the console script with stdout and stderr as pipes (what a script or
``| head`` sees). :class:`Terminal` runs it on a pseudo-terminal that is its controlling
terminal, so typing Ctrl-C (``\\x03``) makes the terminal driver send SIGINT, as in a shell.
Everything is bounded in time.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping

from ._fakes import CONSOLE_SCRIPT, clean_env

__all__ = ["ANSI", "Terminal", "piped", "plain"]

TIMEOUT = 60
#: Escape sequences (colours, cursor moves, the spinner's redraws) and carriage returns.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][A-Z0-9]|\r")

# Makes the pseudo-terminal the child's controlling terminal (it is a session leader,
# started with start_new_session), then becomes the console script.
_CTTY = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def plain(text: str) -> str:
    """Terminal output without escape sequences."""
    return ANSI.sub("", text)


def piped(
    env: Mapping[str, str],
    *args: str,
    input: bytes | None = None,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``replicate-async ARGS`` with pipes for stdin, stdout and stderr."""
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=clean_env(env),
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


class Terminal:
    """``replicate-async ARGS`` on a pseudo-terminal of ``columns`` x 40."""

    def __init__(self, env: Mapping[str, str], *args: str, columns: int = 100) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        full_env = clean_env({"TERM": "xterm-256color", "COLUMNS": str(columns), **env})
        full_env.pop("NO_COLOR", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CTTY, str(CONSOLE_SCRIPT), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._raw = b""

    @property
    def text(self) -> str:
        """Everything shown so far, without escape sequences."""
        return plain(self._raw.decode(errors="replace"))

    def _read(self, wait: float) -> bool:
        """Read what is there within ``wait`` seconds; False at end of output."""
        ready, _, _ = select.select([self._master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # EIO: the other side is closed
            return False
        self._raw += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Wait until the screen text matches ``pattern`` (a regex); return the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            if not self._read(0.1) and not re.search(pattern, self.text):
                break
        raise AssertionError(f"{pattern!r} never appeared in:\n{self.text}")

    def type(self, text: str) -> None:
        """Type on the keyboard (``"\\x03"`` is Ctrl-C)."""
        os.write(self._master, text.encode())

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """Wait for the exit (bounded); return ``(status, text shown)``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.1):
            if self.process.poll() is not None:
                while self._read(0.05):
                    pass
                break
        try:
            code = self.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"still running after {timeout}s:\n{self.text}") from None
        finally:
            os.close(self._master)
        return code, self.text


def on_terminal(
    env: Mapping[str, str], *args: str, columns: int = 100, timeout: float = TIMEOUT
) -> tuple[int, str]:
    """Run to the end on a pseudo-terminal; return ``(status, text shown)``."""
    return Terminal(env, *args, columns=columns).finish(timeout)
