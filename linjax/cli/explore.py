r"""Serves a what-if page for a saved model, on 127.0.0.1.

  linjax explore --model=DIR/model [--data=FILE] [--port=8765]
  python -m experiments.explore --model=DIR/model

The page of `linjax report` (with ``--data``: its tables and documents;
without: the model's templates and curves) plus a text box, like LIT's
datapoint editor: type or edit a text and the prediction, the
probabilities and each token's contribution update as you type. The page
asks the server (the standard library's HTTP server) to predict and
explain at ``POST /api/explain`` with ``{"text": ..., "against": class id
or null}`` (click a class on the page to explain the prediction against
it); it answers `report_whatif.explain_text`'s JSON.

The server binds a loopback address only, unless ``--allow_remote`` (it
has no authentication); it answers only requests whose Host header names
it (no DNS rebinding), refuses bodies over ``--max_chars`` characters
(413) and serves nothing else. Ctrl-C stops it with one line.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import sys
import threading

from absl import app
from absl import flags
from absl import logging
import numpy as np

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import report as report_cli

FLAGS = flags.FLAGS

ENDPOINT = '/api/explain'
DEFAULT_PORT = 8765
DEFAULT_MAX_CHARS = 20000


def define_flags() -> None:
  flags.DEFINE_string('model', None, 'A saved model directory (workdir/model).')
  flags.DEFINE_string('data', None, 'Optional labelled corpus: the page also '
                      'shows the report of the model on it.')
  flags.DEFINE_integer('port', DEFAULT_PORT, 'TCP port (0: any free one).',
                       lower_bound=0, upper_bound=65535)
  flags.DEFINE_string('host', '127.0.0.1', 'Address to bind; a non-loopback '
                      'one needs --allow_remote.')
  flags.DEFINE_bool('allow_remote', False, 'Allow binding a non-loopback '
                    '--host: anyone who reaches it can use the page.')
  flags.DEFINE_integer('max_chars', DEFAULT_MAX_CHARS, 'Longest text the '
                       'page may send; larger requests are refused.',
                       lower_bound=1)
  flags.DEFINE_integer('max_docs', report_cli.DEFAULT_MAX_DOCS, 'With '
                       '--data: documents embedded in the page at most.',
                       lower_bound=0)
  for name in ('format', 'text_column', 'label_column'):
    flags.DEFINE_string(name, '', f'--data\'s {name.replace("_", " ")}; '
                        'empty: as in training.')
  flags.DEFINE_bool('lenient', False, 'Skip bad lines of --data.')
  flags.DEFINE_float('threshold', None, 'Multi-label models: a label is '
                     'predicted at probability >= this (default: the '
                     'model\'s saved threshold).', lower_bound=0.0,
                     upper_bound=1.0)


def is_loopback(host: str) -> bool:
  """Whether ``host`` (an address or 'localhost') is a loopback address."""
  if host == 'localhost':
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


class Explorer:
  """What the server answers with: the page, and one text's explanation."""

  def __init__(self, model, page: str, threshold: float | None,
               max_chars: int):
    self.model = model
    self.page = page.encode('utf-8')
    self.threshold = threshold
    self.max_chars = max_chars
    self.W = np.asarray(model.params.W)
    self.lock = threading.Lock()

  def explain(self, text: str, against: int | None = None) -> dict:
    """`report_whatif.explain_text` of one text (``against``: a class id)."""
    from linjax.analysis import report_whatif  # pylint: disable=g-import-not-at-top
    with self.lock:
      scores = report_cli.scores_of(self.model, [text])[0]
      return report_whatif.explain_text(
          text, scores, self.model.featurizer, self.W, self.threshold,
          against, report_cli.has_probabilities(self.model))


def load_explorer(model_dir: str, data_path: str | None = None,
                  threshold: float | None = None,
                  max_docs: int = report_cli.DEFAULT_MAX_DOCS,
                  max_chars: int = DEFAULT_MAX_CHARS,
                  read_options: dict | None = None) -> Explorer:
  """Loads the model and renders its what-if page (with the report of
  ``data_path``, read with ``read_options``, when given)."""
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  from linjax.analysis import report_page  # pylint: disable=g-import-not-at-top
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  model = saved_model.load(model_dir)
  if not report_cli.is_multi_label(model):
    threshold = None
  elif threshold is None:
    threshold = multilabel_run.saved_threshold(model)
  payload = report_cli.model_payload(model, model_dir, data_path, threshold,
                                     max_docs, read_options)
  page = report_page.render(
      payload, whatif=dict(endpoint=ENDPOINT, max_chars=max_chars),
      title='linjax explore: ' + str(model_dir))
  return Explorer(model, page, threshold, max_chars)


class Handler(http.server.BaseHTTPRequestHandler):
  """GET / (the page) and POST /api/explain; nothing else."""

  server_version = 'linjax-explore'
  explorer: Explorer = None     # set by `make_server`
  hosts: frozenset | None = frozenset()   # None: any Host

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    logging.debug('%s ' + format, self.address_string(), *args)

  def _send(self, status: int, body: bytes, content_type: str) -> None:
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    self.send_header('X-Frame-Options', 'DENY')
    self.end_headers()
    self.wfile.write(body)

  def _json(self, status: int, value: dict) -> None:
    self._send(status, json.dumps(value).encode('utf-8'),
               'application/json; charset=utf-8')

  def _host_ok(self) -> bool:
    if self.hosts is None or self.headers.get('Host', '') in self.hosts:
      return True
    self._json(421, dict(error='unknown Host header'))
    return False

  def do_GET(self):  # pylint: disable=invalid-name
    if not self._host_ok():
      return
    if self.path.split('?')[0] in ('/', '/index.html'):
      self._send(200, self.explorer.page, 'text/html; charset=utf-8')
    else:
      self._json(404, dict(error='not found'))

  def do_POST(self):  # pylint: disable=invalid-name
    if not self._host_ok():
      return
    if self.path != ENDPOINT:
      self._json(404, dict(error='not found'))
      return
    limit = 4 * self.explorer.max_chars + 1024   # UTF-8 and JSON escapes
    try:
      length = int(self.headers.get('Content-Length', ''))
    except ValueError:
      self._json(411, dict(error='a Content-Length is required'))
      return
    if length < 0 or length > limit:
      self.close_connection = True
      self._json(413, dict(error=f'request over {limit} bytes'))
      return
    try:
      request = json.loads(self.rfile.read(length).decode('utf-8'))
      text = request['text']
      if not isinstance(text, str):
        raise TypeError('text is not a string')
      against = request.get('against')
      if against is not None and (
          isinstance(against, bool) or not isinstance(against, int) or
          not 0 <= against < self.explorer.W.shape[1]):
        raise ValueError(f'against must be a class id, got {against!r}')
    except (ValueError, KeyError, TypeError) as e:
      self._json(400, dict(error=f'expected {{"text": "..."}}: {e}'))
      return
    if len(text) > self.explorer.max_chars:
      self._json(413, dict(error=f'text over {self.explorer.max_chars} '
                           'characters'))
      return
    self._json(200, self.explorer.explain(text, against))


def make_server(explorer: Explorer, host: str = '127.0.0.1',
                port: int = DEFAULT_PORT,
                allow_remote: bool = False) -> http.server.HTTPServer:
  """An HTTP server of ``explorer`` bound to ``host:port`` (port 0: any).

  Raises:
    ConfigError: ``host`` is not a loopback address and ``allow_remote``
      is False.
    OSError: the port cannot be bound.
  """
  if not is_loopback(host) and not allow_remote:
    raise config_check.ConfigError(
        f'--host={host} is not a loopback address; the what-if page has no '
        'authentication: pass --allow_remote to serve it to other machines.')
  handler = type('ExploreHandler', (Handler,), {'explorer': explorer})
  server_class = http.server.ThreadingHTTPServer
  if ':' in host:   # an IPv6 address
    server_class = type('Server6', (server_class,),
                        {'address_family': socket.AF_INET6})
  server = server_class((host, port), handler)
  server.daemon_threads = True
  bound = server.server_address[1]
  if is_loopback(host):
    handler.hosts = frozenset(f'{name}:{bound}' for name in (
        '127.0.0.1', 'localhost', '[::1]', f'[{host}]' if ':' in host
        else host))
  else:   # --allow_remote: reached by names the server cannot know
    handler.hosts = None
  return server


def main(argv):
  console.short_log_format()
  with config_check.runner_main(argv, model=FLAGS.model):
    if not is_loopback(FLAGS.host) and not FLAGS.allow_remote:
      raise config_check.ConfigError(
          f'--host={FLAGS.host} is not a loopback address; the what-if page '
          'has no authentication: pass --allow_remote to serve it to other '
          'machines.')
    from linjax.cli import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
    workdir_lib.check_model_dir(FLAGS.model)
    explorer = load_explorer(
        FLAGS.model, FLAGS.data, FLAGS.threshold, FLAGS.max_docs,
        FLAGS.max_chars, read_options=dict(
            format=FLAGS.format, text_column=FLAGS.text_column,
            label_column=FLAGS.label_column, lenient=FLAGS.lenient))
    server = make_server(explorer, FLAGS.host, FLAGS.port, FLAGS.allow_remote)
  host, port = server.server_address[:2]
  shown = f'[{host}]' if ':' in host else host
  print(f'serving the what-if page of {FLAGS.model} at http://{shown}:{port}/'
        ' (Ctrl-C stops it)', flush=True)

  try:
    server.serve_forever()
  except KeyboardInterrupt:   # without linjax.cli.main's signal handling
    sys.stderr.write(f'linjax explore: interrupted; {interrupted_note()}\n')
    sys.exit(130)
  finally:
    server.server_close()


def interrupted_note() -> str:
  """The rest of the one line Ctrl-C prints (linjax/cli/main.py)."""
  return 'the what-if server stopped'


def command() -> None:
  """``linjax explore``: defines the flags, parses them and runs `main`."""
  from linjax.cli import runner_flags  # pylint: disable=g-import-not-at-top
  define_flags()
  app.run(main, flags_parser=runner_flags.parse_flags)


if __name__ == '__main__':
  command()
