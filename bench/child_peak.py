"""Peak RSS of a measured child process: its own VmHWM, never wait4's ``ru_maxrss``.

Linux carries the parent's high-water mark into a child over vfork + exec (Python
starts children that way), so ``ru_maxrss`` of a child is at least the benchmark's
own RSS at the fork (~300-400 MB after writing a 1M-sequence file) whatever the
child used. VmHWM (/proc/self/status) is the high-water mark of the child's own
memory since its exec. Runners written as ``python -c`` code include :data:`PEAK`
and print ``peak_mb()``; a command (``python -m rnaloc_tools ...``, ``python
script.py ...``) runs under :func:`run_measured`, which reads the child's VmHWM as
it ends.
"""

import os
import subprocess
import sys
import tempfile
import time

PEAK = r"""
def peak_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))
"""

#: Runs ``python -m MODULE ARGS`` or ``python SCRIPT ARGS`` in this process as Python would, then writes
#: peak_mb() into the file named by the first argument (also when the command exits with an error).
WRAPPER = PEAK + r"""
import os, runpy, sys
peak_file, args = sys.argv[1], sys.argv[2:]
try:
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(args)
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        runpy.run_path(args[0], run_name="__main__")
finally:
    with open(peak_file, "w") as fh:
        fh.write(repr(peak_mb()))
"""


def run_measured(cmd, env=None, cwd=None):
    """Run ``cmd`` (``[sys.executable, "-m", MODULE, ...]`` or ``[sys.executable, SCRIPT, ...]``); return
    (wall seconds, CPU seconds, peak RSS bytes of that process (its VmHWM), stderr). A failure stops the
    benchmark with the command and its stderr."""
    if not cmd or cmd[0] != sys.executable:
        raise ValueError("run_measured runs Python commands: [sys.executable, '-m', MODULE, ...] or [sys.executable, SCRIPT, ...]")
    with tempfile.NamedTemporaryFile("r", prefix="rnaloc-peak-", suffix=".txt") as peak:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", WRAPPER, peak.name, *map(str, cmd[1:])], cwd=cwd,
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        err = proc.stderr.read()  # read fully before reaping, so wait4 gets this child's own rusage
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{err}")
        peak_mb = float(peak.read())
    return wall, usage.ru_utime + usage.ru_stime, peak_mb * 1024 * 1024, err
