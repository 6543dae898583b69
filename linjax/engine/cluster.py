"""Joining a multi-process run: from arguments or the cluster's environment.

`join` decides whether this process is one of several and, if so, calls
`distributed.initialize` (before any other JAX computation). Where the
settings come from, first match wins:

1. Arguments: ``coordinator_address='host0:1234', num_processes=P,
   process_id=i`` (a runner's flags).
2. ``JAX_COORDINATOR_ADDRESS`` with ``JAX_NUM_PROCESSES`` and
   ``JAX_PROCESS_ID`` (JAX itself reads only the first; the other two are
   read here), e.g. for processes started by hand or by a script.
3. SLURM: a task of ``srun`` (``SLURM_JOB_ID``, ``SLURM_STEP_NODELIST``,
   ``SLURM_NTASKS`` > 1, ``SLURM_PROCID``, ``SLURM_LOCALID``); JAX finds the
   coordinator (the step's first node), the count and the id.
4. Open MPI: a rank of ``mpirun`` (``OMPI_MCA_orte_hnp_uri``,
   ``OMPI_COMM_WORLD_SIZE`` > 1); JAX finds the rest.

Otherwise (or with one process) there is nothing to join: a single process.
A bad or incomplete setting raises `ConfigError` naming the variable or
argument, before anything starts.
"""

from __future__ import annotations

import os
from typing import Mapping, NamedTuple

from linjax.core.errors import ConfigError
from linjax.engine import distributed

_SLURM = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS',
          'SLURM_PROCID', 'SLURM_LOCALID')
_OMPI = ('OMPI_MCA_orte_hnp_uri', 'OMPI_COMM_WORLD_SIZE')


class ClusterSpec(NamedTuple):
  """How to join: None fields are left to JAX's cluster detection.

  source: 'arguments' | 'JAX_* variables' | 'SLURM' | 'Open MPI'.
  """

  coordinator_address: str | None
  num_processes: int | None
  process_id: int | None
  source: str


def _integer(value, name: str, lo: int) -> int:
  try:
    number = int(str(value).strip())
  except ValueError:
    number = None
  if number is None or number < lo or isinstance(value, bool):
    raise ConfigError(f'{name} must be an integer >= {lo}, got {value!r}.')
  return number


def _checked(address, count, pid, names, source) -> ClusterSpec | None:
  """The spec of explicit settings, or None for a single process."""
  missing = [n for n, v in zip(names, (address, count, pid)) if v is None]
  if missing:
    raise ConfigError(f'{", ".join(missing)} must be set too when '
                      f'{names[0] if address is not None else names[1]} '
                      f'is ({source}).')
  if not str(address).strip() or ':' not in str(address):
    raise ConfigError(f'{names[0]} must be host:port (the address of '
                      f'process 0), got {address!r}.')
  count = _integer(count, names[1], 1)
  pid = _integer(pid, names[2], 0)
  if pid >= count:
    raise ConfigError(f'{names[2]} must be below {names[1]}={count}, got '
                      f'{pid}.')
  if count == 1:
    return None
  return ClusterSpec(str(address).strip(), count, pid, source)


ARGUMENTS = ('coordinator_address', 'num_processes', 'process_id')


def detect(coordinator_address: str | None = None,
           num_processes: int | None = None, process_id: int | None = None,
           env: Mapping[str, str] | None = None,
           names: tuple[str, str, str] = ARGUMENTS) -> ClusterSpec | None:
  """How this process joins a run of several, or None if it runs alone.

  Args:
    coordinator_address, num_processes, process_id: explicit settings (all
      three, or none).
    env: the environment to read (default ``os.environ``).
    names: what errors call the three arguments (a runner's flags, e.g.
      ``('--coordinator_address', '--num_processes', '--process_id')``).

  Returns:
    ClusterSpec, or None for a single process.

  Raises:
    ConfigError: naming the argument or variable that is bad or missing.
  """
  env = os.environ if env is None else env
  if (coordinator_address, num_processes, process_id) != (None, None, None):
    return _checked(coordinator_address, num_processes, process_id,
                    tuple(names), 'arguments')
  if env.get('JAX_COORDINATOR_ADDRESS'):
    return _checked(env.get('JAX_COORDINATOR_ADDRESS'),
                    env.get('JAX_NUM_PROCESSES'), env.get('JAX_PROCESS_ID'),
                    ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES',
                     'JAX_PROCESS_ID'), 'JAX_* variables')
  if all(name in env for name in _SLURM):
    if _integer(env['SLURM_NTASKS'], 'SLURM_NTASKS', 1) > 1:
      return ClusterSpec(None, None, None, 'SLURM')
  if all(name in env for name in _OMPI):
    if _integer(env['OMPI_COMM_WORLD_SIZE'], 'OMPI_COMM_WORLD_SIZE', 1) > 1:
      return ClusterSpec(None, None, None, 'Open MPI')
  return None


def join(coordinator_address: str | None = None,
         num_processes: int | None = None, process_id: int | None = None,
         env: Mapping[str, str] | None = None,
         names: tuple[str, str, str] = ARGUMENTS) -> ClusterSpec | None:
  """Joins the run of several processes `detect` finds; None if alone.

  Call before any other JAX computation. Every process then runs the same
  program on its own shard of the data (linjax/data/shards.py), and `fit`
  trains over all devices of all processes.
  """
  spec = detect(coordinator_address, num_processes, process_id, env, names)
  if spec is not None:
    distributed.initialize(spec.coordinator_address, spec.num_processes,
                           spec.process_id)
  return spec
