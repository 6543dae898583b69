"""The library's layering, read from its import graph (see docs/architecture.md).

linjax/ has seven layers, each a folder (the top layer is the package root):
core, text, data, engine, analysis, then saved_model and the estimator, then
cli (the ``linjax`` command, the only layer that sees ml_collections). A
module may import from its own layer or the ones before it in that list,
never from a later one; no import cycles; no ``_private`` name of another
module; the host layers (text, data) never import JAX; and the library never
imports the repository's experiments/ or benchmarks/, and only cli imports
ml_collections.
"""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'linjax'
LAYERS = ('core', 'text', 'data', 'engine', 'analysis', 'top', 'cli')
HOST_LAYERS = ('text', 'data')
FORBIDDEN = ('experiments', 'benchmarks')
CONFIG_LIBRARY = 'ml_collections'   # the cli layer's alone


def module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(REPO).with_suffix('').parts)
  if parts[-1] == '__init__':
    parts.pop()
  return '.'.join(parts)


def layer_of(module: str) -> str:
  if module == 'linjax.__main__':   # ``python -m linjax``: the command
    return 'cli'
  parts = module.split('.')
  if len(parts) > 1 and parts[1] in LAYERS:
    return parts[1]
  return 'top'


def modules() -> dict:
  return {module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}


class Imports(ast.NodeVisitor):
  """Every import of a module (any depth), resolved to module names."""

  def __init__(self, name: str, known: set):
    self.name, self.known = name, known
    self.edges = []          # (imported module, line)
    self.private = []        # (what, line)
    self.external = []       # (top-level package, line)
    self.aliases = {}        # local name -> linjax module

  def _target(self, module: str, names):
    for alias in names:
      full = f'{module}.{alias.name}'
      if full in self.known:         # `from linjax.core import model`
        yield full, alias
      else:
        yield module, alias

  def visit_Import(self, node):
    for alias in node.names:
      self.external.append((alias.name.split('.')[0], node.lineno))
      if alias.name.startswith('linjax'):
        self.edges.append((alias.name, node.lineno))
        if alias.asname:
          self.aliases[alias.asname] = alias.name

  def visit_ImportFrom(self, node):
    module = node.module or ''
    if node.level:   # relative imports are not used in linjax
      self.private.append((f'relative import of {module}', node.lineno))
      return
    self.external.append((module.split('.')[0], node.lineno))
    if not module.startswith('linjax'):
      return
    for target, alias in self._target(module, node.names):
      self.edges.append((target, node.lineno))
      if target != module:
        self.aliases[alias.asname or alias.name] = target
      elif (alias.name.startswith('_') and not alias.name.startswith('__')
            and target != self.name):
        self.private.append((f'{module}.{alias.name}', node.lineno))

  def visit_Attribute(self, node):
    if (isinstance(node.value, ast.Name) and node.value.id in self.aliases
        and node.attr.startswith('_') and not node.attr.startswith('__')):
      self.private.append((f'{self.aliases[node.value.id]}.{node.attr}',
                           node.lineno))
    self.generic_visit(node)


def graph():
  mods = modules()
  known = set(mods)
  out = {}
  for name, path in mods.items():
    visitor = Imports(name, known)
    visitor.visit(ast.parse(path.read_text(), str(path)))
    out[name] = visitor
  return mods, out


def test_layers_are_folders():
  for layer in LAYERS:
    if layer == 'top':   # the package root
      continue
    assert (PACKAGE / layer / '__init__.py').exists(), layer


def test_imports_only_go_down_the_layers():
  _, imports = graph()
  bad = []
  for name, visitor in imports.items():
    own = LAYERS.index(layer_of(name))
    for target, line in visitor.edges:
      if target == 'linjax' and layer_of(name) not in ('top', 'cli'):
        bad.append(f'{name}:{line} imports the linjax package root')
      elif LAYERS.index(layer_of(target)) > own:
        bad.append(f'{name}:{line} imports {target} from a later layer')
  assert not bad, '\n'.join(bad)


def test_no_private_names_across_modules():
  _, imports = graph()
  bad = [f'{name}:{line} uses {what}' for name, v in imports.items()
         for what, line in v.private]
  assert not bad, '\n'.join(bad)


def test_no_import_cycles():
  _, imports = graph()
  edges = {name: {t for t, _ in v.edges if t in imports and t != name}
           for name, v in imports.items()}
  # A package's __init__ re-exporting its own modules is not a cycle.
  for name in edges:
    edges[name] = {t for t in edges[name] if not (
        t.startswith(name + '.') or name.startswith(t + '.') and
        imports[t] is not None and t.count('.') < name.count('.'))}
  state, cycles = {}, []

  def visit(node, stack):
    state[node] = 'open'
    stack.append(node)
    for nxt in sorted(edges[node]):
      if state.get(nxt) == 'open':
        cycles.append(' -> '.join(stack[stack.index(nxt):] + [nxt]))
      elif nxt not in state:
        visit(nxt, stack)
    stack.pop()
    state[node] = 'done'

  for node in sorted(edges):
    if node not in state:
      visit(node, [])
  assert not cycles, '\n'.join(cycles)


@pytest.mark.parametrize('layer', HOST_LAYERS)
def test_host_layers_do_not_import_jax(layer):
  _, imports = graph()
  bad = [f'{name}:{line} imports {pkg}' for name, v in imports.items()
         if layer_of(name) == layer for pkg, line in v.external
         if pkg in ('jax', 'jaxlib', 'optax', 'chex')]
  assert not bad, '\n'.join(bad)


def test_library_does_not_import_the_runners():
  _, imports = graph()
  bad = [f'{name}:{line} imports {pkg}' for name, v in imports.items()
         for pkg, line in v.external if pkg in FORBIDDEN or (
             pkg == CONFIG_LIBRARY and layer_of(name) != 'cli')]
  assert not bad, '\n'.join(bad)


def test_no_two_library_modules_share_a_basename():
  """Except the command's modules, each named after its subcommand
  (``linjax autotune`` is linjax/cli/autotune.py over engine/autotune.py)."""
  names = {}
  for path in PACKAGE.rglob('*.py'):
    if path.name != '__init__.py' and path.parent.name != 'cli':
      names.setdefault(path.name, []).append(str(path.relative_to(REPO)))
  assert not {k: v for k, v in names.items() if len(v) > 1}


def test_the_checker_sees_a_violation(tmp_path):
  """The visitor itself: an upward import and a private name are found."""
  src = ('from linjax.engine import training\n'
         'from linjax.core.model import _hidden\n'
         'training._pack(1)\n')
  visitor = Imports('linjax.core.losses', {'linjax.engine.training',
                                           'linjax.core.model'})
  visitor.visit(ast.parse(src))
  assert ('linjax.engine.training', 1) in visitor.edges
  assert [w for w, _ in visitor.private] == ['linjax.core.model._hidden',
                                             'linjax.engine.training._pack']
