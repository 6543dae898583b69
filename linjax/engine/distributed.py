r"""Data-parallel training over devices and processes with jax.sharding.

Model: a 1-D mesh with axis 'batch' over every device of every process. The
parameters and optimiser state are replicated. ``train.batch_size`` and
``train.token_budget`` describe ONE global step whatever the number of
devices: each step of the 1-device run is split into S sub-batches, one per
device (linjax/engine/step_split.py), and `fit` runs its epoch under
`shard_map`. Each device computes its documents' scores and slot gradients;
the step all-gathers them, puts them back in the 1-device order and applies
the same update on every device (linjax/engine/step.py): the replicas never
drift apart, and S devices train the 1-device model (bit for bit with
plain SGD on the sparse path).

Single host, several accelerators: nothing to do; `fit` uses all local devices
(`default_mesh`). On CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
gives 8 devices for testing (slower than one: they share the cores).

Several processes (hosts): start the runner once per process, e.g. on one
machine::

  JAX_COORDINATOR_ADDRESS=127.0.0.1:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 \
      python -m experiments.train --config.data.train=train.tsv --workdir=run
  # ... and the same with JAX_PROCESS_ID=1 (or the flags --coordinator_address,
  # --num_processes, --process_id)

or on a SLURM cluster ``srun --ntasks=8 python -m experiments.train ...``
(Open MPI: ``mpirun -np 8 ...``). The processes find each other
(linjax/engine/cluster.py), each reads only its part of the corpus (a byte
range of one file, or its own files of a glob: linjax/data/shards.py), and
they train the model one process trains on the whole corpus: the parts in
process order are the corpus, and only the documents' entry counts travel
between processes before training, never their features. Process 0 writes
the results, the model and the checkpoints. See experiments/multiprocess_run.py
for what the runner combines across processes (labels, splits, document
frequencies, metrics) and the README for the whole story.

In Python, call `cluster.join()` before any other JAX computation, give
`training.fit` each process's own documents, and let process 0 alone write.
On CPU the collectives need ``jax_cpu_collectives_implementation='gloo'``,
which `initialize` sets.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


AXIS = 'batch'


def initialize(coordinator_address: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None, **kwargs) -> None:
  """`jax.distributed.initialize`, with gloo collectives on CPU.

  Call before any other JAX computation. With no arguments JAX reads the
  cluster environment (SLURM, Open MPI, TPU pods, JAX_* variables).
  """
  # Only CPU collectives read this; harmless on GPU/TPU clusters.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id, **kwargs)


def make_mesh(devices=None) -> Mesh:
  """1-D mesh with axis 'batch' over ``devices`` (default: all devices)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.array(devices), (AXIS,))


def default_mesh() -> Mesh | None:
  """All devices when there are several (or several processes), else None."""
  if jax.process_count() > 1 or jax.device_count() > 1:
    return make_mesh()
  return None


def process_shard(num_docs: int) -> np.ndarray:
  """int64 indices of this process's documents: its contiguous block.

  Process p of P gets documents ``p * N // P .. (p + 1) * N // P - 1``, so
  the shards in process order are the corpus in its order: the run trains
  the model one process trains on the whole corpus.
  """
  p, num = jax.process_index(), jax.process_count()
  return np.arange(p * num_docs // num, (p + 1) * num_docs // num,
                   dtype=np.int64)


def replicate(tree, mesh: Mesh):
  """Host values (identical on every process) -> replicated global arrays."""
  sharding = NamedSharding(mesh, P())

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree_util.tree_map(put, tree)


def shard_steps(tree, mesh: Mesh):
  """Process-local [G, S_local, ...] arrays -> global [G, S, ...] arrays."""
  sharding = NamedSharding(mesh, P(None, AXIS))

  def put(x):
    x = np.asarray(x)
    shape = (x.shape[0], x.shape[1] * jax.process_count()) + x.shape[2:]
    return jax.make_array_from_process_local_data(sharding, x, shape)

  return jax.tree_util.tree_map(put, tree)


def local_value(x) -> np.ndarray:
  """numpy copy of a (replicated) array, read from this process's device."""
  if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
    return np.asarray(x.addressable_data(0))
  return np.asarray(x)


def local_array(x):
  """The on-device value of a replicated array on one local device."""
  if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
    return x.addressable_data(0)
  return x


def _allgather(x) -> np.ndarray:
  """[P, ...]: every process's ``x`` (the same shape on each), exact in any
  dtype: the bytes travel, since JAX would narrow 64-bit values to 32 bits
  (float64 sums of counts past 2**24, int64 past 2**31)."""
  from jax.experimental import multihost_utils
  x = np.ascontiguousarray(x)
  raw = np.ascontiguousarray(multihost_utils.process_allgather(
      x.reshape(-1).view(np.uint8)))
  return raw.view(x.dtype).reshape((raw.shape[0],) + x.shape)


def all_max(values) -> np.ndarray:
  """Element-wise max of an int vector over processes."""
  values = np.asarray(values, np.int64)
  if jax.process_count() == 1:
    return values
  return _allgather(values).max(axis=0)


def all_concat(values) -> tuple[np.ndarray, np.ndarray]:
  """Every process's vector, one after another in process order.

  Returns:
    (values of all processes concatenated [sum n_p], bounds int64 [P + 1]:
    process p's values are ``bounds[p]:bounds[p + 1]``).
  """
  values = np.asarray(values)
  n = values.shape[0]
  if jax.process_count() == 1:
    return values, np.array([0, n], np.int64)
  counts = _allgather(np.array([n], np.int64)).reshape(-1)
  padded = np.zeros(int(counts.max()), values.dtype)
  padded[:n] = values
  every = _allgather(padded)
  bounds = np.zeros(counts.shape[0] + 1, np.int64)
  np.cumsum(counts, out=bounds[1:])
  return np.concatenate([every[p, :c] for p, c in enumerate(counts)]), bounds


def all_sum(values) -> np.ndarray:
  """Element-wise float64 sum of a vector over processes (in process
  order, so every process gets the same bits)."""
  values = np.asarray(values, np.float64)
  if jax.process_count() == 1:
    return values
  return _allgather(values).sum(axis=0)
