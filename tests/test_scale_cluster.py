"""cluster.detect: where a multi-process run's settings come from.

The joining itself (`cluster.join` from JAX_* variables, two gloo processes
on 127.0.0.1) runs in test_distributed.py.
"""

from absl.testing import absltest

from linjax.core.errors import ConfigError
from linjax.engine import cluster

JAX_VARS = dict(JAX_COORDINATOR_ADDRESS='10.0.0.1:1234',
                JAX_NUM_PROCESSES='4', JAX_PROCESS_ID='3')
SLURM = dict(SLURM_JOB_ID='77', SLURM_STEP_NODELIST='node[1-2]',
             SLURM_NTASKS='2', SLURM_PROCID='1', SLURM_LOCALID='0')
OMPI = dict(OMPI_MCA_orte_hnp_uri='1531576320.0;tcp://10.0.0.1:34911',
            OMPI_COMM_WORLD_SIZE='3')


class DetectTest(absltest.TestCase):

  def test_alone_without_settings(self):
    self.assertIsNone(cluster.detect(env={}))
    self.assertIsNone(cluster.detect(env=dict(HOME='/root')))
    self.assertIsNone(cluster.join(env={}))   # nothing to join, no JAX call

  def test_arguments_first(self):
    spec = cluster.detect('h:1', 2, 1, env=JAX_VARS)
    self.assertEqual(spec, cluster.ClusterSpec('h:1', 2, 1, 'arguments'))

  def test_jax_variables(self):
    spec = cluster.detect(env=JAX_VARS)
    self.assertEqual(spec, cluster.ClusterSpec('10.0.0.1:1234', 4, 3,
                                               'JAX_* variables'))

  def test_one_process_needs_no_cluster(self):
    self.assertIsNone(cluster.detect('h:1', 1, 0, env={}))
    self.assertIsNone(cluster.detect(env=dict(
        JAX_VARS, JAX_NUM_PROCESSES='1', JAX_PROCESS_ID='0')))
    self.assertIsNone(cluster.detect(env=dict(SLURM, SLURM_NTASKS='1')))
    self.assertIsNone(cluster.detect(env=dict(OMPI,
                                              OMPI_COMM_WORLD_SIZE='1')))

  def test_slurm_and_open_mpi_are_left_to_jax(self):
    self.assertEqual(cluster.detect(env=SLURM),
                     cluster.ClusterSpec(None, None, None, 'SLURM'))
    self.assertEqual(cluster.detect(env=OMPI),
                     cluster.ClusterSpec(None, None, None, 'Open MPI'))
    # sbatch's shell (no srun step) is one process.
    no_step = {k: v for k, v in SLURM.items() if k != 'SLURM_STEP_NODELIST'}
    self.assertIsNone(cluster.detect(env=no_step))
    # Explicit JAX_* variables win over the scheduler's.
    self.assertEqual(cluster.detect(env=dict(SLURM, **JAX_VARS)).source,
                     'JAX_* variables')

  def test_bad_settings_name_the_variable(self):
    cases = [
        (dict(JAX_COORDINATOR_ADDRESS='h:1'),
         'JAX_NUM_PROCESSES, JAX_PROCESS_ID must be set too'),
        (dict(JAX_VARS, JAX_PROCESS_ID='x'),
         "JAX_PROCESS_ID must be an integer >= 0, got 'x'"),
        (dict(JAX_VARS, JAX_PROCESS_ID='4'),
         'JAX_PROCESS_ID must be below JAX_NUM_PROCESSES=4, got 4'),
        (dict(JAX_VARS, JAX_NUM_PROCESSES='0'),
         'JAX_NUM_PROCESSES must be an integer >= 1'),
        (dict(JAX_VARS, JAX_COORDINATOR_ADDRESS='host0'),
         'JAX_COORDINATOR_ADDRESS must be host:port'),
        (dict(SLURM, SLURM_NTASKS='two'), 'SLURM_NTASKS must be an integer'),
    ]
    for env, message in cases:
      with self.assertRaisesRegex(ConfigError, message):
        cluster.detect(env=env)
    with self.assertRaisesRegex(ConfigError, 'num_processes, process_id must '
                                'be set too when coordinator_address is'):
      cluster.detect('h:1', env={})
    with self.assertRaisesRegex(ConfigError, 'coordinator_address must be set'
                                ' too when num_processes is'):
      cluster.detect(num_processes=2, process_id=0, env={})


if __name__ == '__main__':
  absltest.main()
