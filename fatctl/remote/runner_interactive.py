"""An interactive remote shell on the local terminal: PTY, raw mode, window resize, exit code.

Part of the runner (the only paramiko importers). The local terminal goes to raw mode so that
every key reaches the remote shell; SIGWINCH is turned into a byte on a self-pipe and the main
loop resizes the remote PTY, so no SSH call ever runs inside a signal handler.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import termios
import tty
from typing import Any

import paramiko

from fatctl.calllog import SSH, mask_command
from fatctl.errors import BadInput, RemoteError
from fatctl.remote.runner import Connection


def _size(fd: int) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 80, 24
    return size.columns, size.lines


def _pump(chan: paramiko.Channel, fd_in: int, fd_out: int, wake_r: int) -> None:
    """Copy terminal input to the channel and channel output to the terminal until it closes."""
    chan_fd = chan.fileno()
    sources = [chan_fd, fd_in, wake_r]
    while True:
        readable, _, _ = select.select(sources, [], [])
        if wake_r in readable:
            os.read(wake_r, 64)
            chan.resize_pty(*_size(fd_in))
        if chan_fd in readable:
            data = chan.recv(32768)
            if not data:
                break
            os.write(fd_out, data)
        if fd_in in readable:
            data = os.read(fd_in, 4096)
            if data:
                chan.sendall(data)
            else:  # the terminal went away: stop reading it, let the remote side finish
                sources.remove(fd_in)
        if chan.exit_status_ready() and not chan.recv_ready():
            break


def interactive_shell(conn: Connection, command: str | None = None) -> int:
    """Run a login shell (or `command`, on a PTY: a QR login draws on it) on `conn`, attached
    to this process's terminal; return its exit code."""
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    if not os.isatty(fd_in):
        raise BadInput("an interactive shell needs a terminal: use `fatctl ssh AGENT -- CMD`")
    chan = conn.open_session()
    if SSH.isEnabledFor(logging.INFO):
        where = f"{conn.target.user}@{conn.target.label()}"
        SSH.info("%s: %s (interactive)", where, mask_command(command or "login shell"))
    wake_r, wake_w = os.pipe()
    old_tty = termios.tcgetattr(fd_in)
    old_handler: Any = signal.getsignal(signal.SIGWINCH)
    try:
        cols, rows = _size(fd_in)
        chan.get_pty(term=os.environ.get("TERM", "xterm"), width=cols, height=rows)
        if command is None:
            chan.invoke_shell()
        else:
            chan.exec_command(command)
        signal.signal(signal.SIGWINCH, lambda *_: os.write(wake_w, b"w"))
        tty.setraw(fd_in)
        _pump(chan, fd_in, fd_out, wake_r)
        return chan.recv_exit_status()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise RemoteError(f"{conn.target.label()}: shell ended: {exc}") from None
    finally:
        termios.tcsetattr(fd_in, termios.TCSADRAIN, old_tty)
        signal.signal(signal.SIGWINCH, old_handler)
        os.close(wake_r)
        os.close(wake_w)
        chan.close()
