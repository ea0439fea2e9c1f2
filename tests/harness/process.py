"""_Process: a child in its own session with stdout/stderr to files, always reaped
(killed at interpreter exit as a last resort); _Server: what the servers share."""

import atexit
import os
import signal
import subprocess

from .util import Closing


_live = set()  # every _Process not yet reaped: killed at interpreter exit as a last resort


@atexit.register
def _kill_leftovers():
    for p in list(_live):
        p.signal_group(signal.SIGKILL)


class _Process:
    """A child in its own session, stdout/stderr to files; stop() always reaps it."""

    def __init__(self, argv, env, log_prefix, cwd=None):
        self.argv = argv
        self.stdout_path = log_prefix + ".out"
        self.stderr_path = log_prefix + ".err"
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=cwd,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        _live.add(self)

    def alive(self):
        return self.proc.poll() is None

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout):
        """Waits for the exit; returns the exit code (negative: signal) or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig to the process group, SIGKILL after timeout; returns the exit code."""
        if self.alive():
            self.signal_group(sig)
            if self.wait(timeout) is None:
                self.signal_group(signal.SIGKILL)
        rc = self.proc.wait()
        self.signal_group(signal.SIGKILL)  # stragglers in the group (e.g. erl_child_setup)
        _live.discard(self)
        return rc


class _Server(Closing):
    """What the servers share: start() and stop() are theirs; kill() is a crash (SIGKILL:
    Redis loses unsaved data; RabbitMQ keeps confirmed persistent messages)."""

    proc = None

    def kill(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def _boot(self):
        """start(), or close() (nothing left behind) when it fails."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
