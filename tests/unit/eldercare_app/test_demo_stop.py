"""`make demo` stops promptly on Ctrl-C: its children are stopped with SIGTERM under one
shared deadline, even when they inherited SIGINT ignored (started from a shell in the
background), which used to cost a 20 s wait per child before the kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from eldercare_app.demo import _stop_children

# A child like `eldercare sim` started from a background shell: SIGINT ignored, stops on
# SIGTERM after a short clean-up.
IGNORES_SIGINT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
while not stop:
    time.sleep(0.05)
time.sleep(0.2)
"""
# A child that ignores both: only the shared deadline's SIGKILL ends it.
IGNORES_BOTH = IGNORES_SIGINT.replace(
    "signal.signal(signal.SIGTERM, lambda *_: stop.append(1))",
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
)


def _start(code: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def test_children_ignoring_sigint_stop_at_once() -> None:
    children = [_start(IGNORES_SIGINT), _start(IGNORES_SIGINT)]
    began = time.monotonic()
    _stop_children(children, within_s=10.0)
    assert time.monotonic() - began < 5.0
    assert [c.returncode for c in children] == [0, 0]


def test_a_stuck_child_is_killed_at_the_shared_deadline() -> None:
    children = [_start(IGNORES_BOTH), _start(IGNORES_BOTH)]
    began = time.monotonic()
    _stop_children(children, within_s=1.0)
    took = time.monotonic() - began
    # One deadline for all, not one per child.
    assert took < 1.9, took
    assert [c.returncode for c in children] == [-signal.SIGKILL, -signal.SIGKILL]
