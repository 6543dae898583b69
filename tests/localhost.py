"""For tests that start JAX processes on this machine (127.0.0.1 only)."""

import os
import socket

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
_CLUSTER_VARIABLES = ('XLA_FLAGS', 'JAX_COORDINATOR_ADDRESS',
                      'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')


def free_port() -> int:
  """A TCP port free on 127.0.0.1 now (a coordinator's)."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def child_env(devices: int | None = None, **extra) -> dict:
  """The environment of a child process: CPU JAX with ``devices`` devices
  (None: JAX's one), the repository and tests/ importable, and none of this
  process's cluster variables (a child joins only the cluster it is told)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             PYTHONPATH=os.pathsep.join([ROOT, TESTS]))
  for name in _CLUSTER_VARIABLES:
    env.pop(name, None)
  if devices:
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  env.update(extra)
  return env


def run_together(commands, env: dict, timeout: float = 240) -> list[str]:
  """Starts every command at once (the processes of one run), waits for all
  and returns each one's output (stdout and stderr). A process still running
  after ``timeout`` seconds, or left by an error, is killed. Fails, with the
  end of its output, if any process exits non-zero."""
  import subprocess  # pylint: disable=g-import-not-at-top
  procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT) for c in commands]
  try:
    logs = [p.communicate(timeout=timeout)[0].decode() for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for i, (p, log) in enumerate(zip(procs, logs)):
    assert p.returncode == 0, (
        f'process {i} exited {p.returncode}:\n{log[-3000:]}')
  return logs
