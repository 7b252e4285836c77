"""A server started as a subprocess for the tests: its output is read by a thread, so that every
wait has a deadline and nothing blocks on a pipe (imported by the tests of this folder)."""

import queue
import re
import signal
import subprocess
import threading
import time

ANNOUNCEMENT = re.compile(r"demo page on (http://\S+)")


class ServerProcess:
    """``argv`` in a subprocess (stdout and stderr together); :meth:`wait_for_url` reads until
    :func:`alphafree_d2.app.serve` announces its address."""

    def __init__(self, argv, env=None, cwd=None):
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = []
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = None

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)  # end of output: the process has exited

    def text(self):
        return "".join(self.output)

    def wait_for(self, pattern, timeout, what="the expected output"):
        """The match of the first line not read yet that matches ``pattern`` (a compiled regular
        expression); AssertionError with the output if the process exits first or nothing
        matches within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout} s; output:\n{self.text()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the server exited before {what}:\n{self.text()}")
            match = pattern.search(line)
            if match:
                return match

    def wait_for_url(self, timeout):
        """The announced address (see :meth:`wait_for`)."""
        self.url = self.wait_for(ANNOUNCEMENT, timeout, "address").group(1)
        return self.url

    @property
    def port(self):
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def stop(self, sig=signal.SIGINT, timeout=60):
        """Send ``sig`` (default: Ctrl+C) and return the exit status; the output is complete
        afterwards."""
        self.proc.send_signal(sig)
        status = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return status

    def kill(self):
        """Make sure the process is gone (for ``finally``)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
