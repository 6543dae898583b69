"""report.html and the what-if page in a real browser (headless Chromium).

Driven by selenium through Debian's chromium and chromium-driver (.ci/run
installs them); skipped, with the reason, only where they are missing. The
browser starts with an empty profile and no background networking; every
request it makes is read from its DevTools performance log, and anything
but loopback would also hit a dead proxy. The servers bind 127.0.0.1 and
stop when the test ends. The numbers the page shows are checked against
tests/test_report.py's independent reference.
"""

import os
import re
import shutil
import threading

import numpy as np
import pytest

from linjax import saved_model
from tests import test_report as fixtures

_CHROMIUM = ('chromium', 'chromium-browser', 'google-chrome')


def _find(names, fallback):
  for name in names:
    path = shutil.which(name)
    if path:
      return path
  return fallback if os.path.exists(fallback) else None


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
  try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
  except ImportError:
    pytest.skip('selenium is not installed: pip install -e ".[test]"')
  chromium = _find(_CHROMIUM, '/usr/bin/chromium')
  chromedriver = _find(('chromedriver',), '/usr/bin/chromedriver')
  if not chromium or not chromedriver:
    pytest.skip('no headless Chromium here: apt-get install chromium '
                'chromium-driver (.ci/run does)')
  options = webdriver.ChromeOptions()
  options.binary_location = chromium
  profile = tmp_path_factory.mktemp('chromium-profile')
  for arg in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
              '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync',
              '--disable-default-apps', '--disable-extensions',
              f'--user-data-dir={profile}', '--window-size=1300,900',
              # Anything not on loopback goes to a dead proxy: no internet.
              '--proxy-server=127.0.0.1:9'):
    options.add_argument(arg)
  options.set_capability('goog:loggingPrefs',
                         {'browser': 'ALL', 'performance': 'ALL'})
  driver = webdriver.Chrome(service=Service(chromedriver), options=options)
  driver.set_page_load_timeout(60)
  driver.get('about:blank')   # past the start page's own loads
  driver.get_log('performance')
  yield driver
  driver.quit()


def requested_urls(driver) -> list:
  """The URLs the page requested since the last call (DevTools log)."""
  import json
  urls = []
  for entry in driver.get_log('performance'):
    message = json.loads(entry['message'])['message']
    if message['method'] == 'Network.requestWillBeSent':
      urls.append(message['params']['request']['url'])
  return urls


def console_errors(driver) -> list:
  return [e for e in driver.get_log('browser') if e['level'] == 'SEVERE']


def wait_for(driver, condition, timeout=20):
  from selenium.webdriver.support.ui import WebDriverWait
  return WebDriverWait(driver, timeout).until(lambda d: condition(d))


@pytest.fixture(scope='module')
def report(tmp_path_factory):
  """A model, its labelled test file (with the hostile and astral
  documents) and the report.html `linjax report` wrote for them."""
  from linjax.cli import report as report_cli
  path = tmp_path_factory.mktemp('report')
  model_dir, texts, labels = fixtures.make_model(path)
  data = fixtures.write_tsv(path / 'test.tsv', texts, labels)
  out = str(path / 'report.html')
  report_cli.report_for_model(model_dir, data, out)
  model = saved_model.load(model_dir)
  return dict(model_dir=model_dir, model=model, texts=texts, labels=labels,
              out=out, url='file://' + out)


@pytest.fixture
def page(browser, report):
  browser.get_log('performance')   # forget earlier tests' requests
  browser.get_log('browser')
  browser.get(report['url'])
  wait_for(browser, lambda d: d.find_elements(
      'css selector', '[data-testid=doc-row]'))
  return browser


def test_report_loads_without_errors_or_requests(page, report):
  assert console_errors(page) == []
  urls = requested_urls(page)
  assert urls and set(urls) == {report['url']}, urls
  assert page.title.startswith('linjax report')


def test_confusion_cells_sum_to_the_test_documents(page, report):
  cells = page.find_elements('css selector', '[data-testid=confusion-cell]')
  names = report['model'].label_map.names
  assert len(cells) == len(names) ** 2
  assert sum(int(c.get_attribute('data-count')) for c in cells) == len(
      report['texts'])


def test_clicking_an_off_diagonal_cell_lists_exactly_its_documents(page):
  cells = page.find_elements('css selector', '[data-testid=confusion-cell]')
  off = [c for c in cells if c.get_attribute('data-true') !=
         c.get_attribute('data-pred') and int(c.get_attribute('data-count'))]
  assert off, 'the test model makes no mistake'
  for cell in off[:4]:
    true, pred = cell.get_attribute('data-true'), cell.get_attribute(
        'data-pred')
    count = int(cell.get_attribute('data-count'))
    page.execute_script('arguments[0].scrollIntoView(); arguments[0].click()',
                        cell)
    rows = wait_for(page, lambda d: (lambda r: r if len(r) == count else None)(
        d.find_elements('css selector', '[data-testid=doc-row]')))
    assert [(r.get_attribute('data-true'), r.get_attribute('data-pred'))
            for r in rows] == [(true, pred)] * count


_TOKENS_JS = """
return [...document.querySelectorAll('[data-testid=doc-row]')].map(r => ({
  index: +r.dataset.index,
  text: r.querySelector('.doctext').textContent,
  tokens: [...r.querySelectorAll('[data-testid=token]')].map(
      t => [t.textContent, +t.dataset.contribution])}));
"""


def test_highlights_have_the_sign_of_independent_contributions(page, report):
  model, texts = report['model'], report['texts']
  W = np.asarray(model.params.W, np.float64)
  proba = np.asarray(model.predict_proba(texts), np.float64)
  y = model.label_map.encode(report['labels'])
  rows = page.execute_script(_TOKENS_JS)
  assert len(rows) == len(texts)
  checked = 0
  for row in rows:
    i = row['index']
    assert row['text'] == texts[i]    # character for character
    order = np.argsort(-proba[i])
    target = order[0]
    other = y[i] if target != y[i] else order[1]
    if texts[i] == fixtures.ASTRAL:   # emoji are no token: spans still right
      assert [t for t, _ in row['tokens']] == re.findall(r'\w+|[^\w\s]',
                                                         texts[i])
      continue
    expected = fixtures.reference_contributions(model.featurizer, W, texts[i],
                                                target, other)
    spans = sorted(expected)
    assert [t for t, _ in row['tokens']] == [texts[i][s:e] for s, e in spans]
    for (_, shown), span in zip(row['tokens'], spans):
      want = expected[span]
      if abs(want) > 1e-9:
        assert np.sign(shown) == np.sign(want), (texts[i], span, shown, want)
        assert shown == pytest.approx(want, rel=6e-3)
        checked += 1
  assert checked > 100


def test_injected_markup_renders_as_text(page, report):
  assert page.execute_script('return window.__pwned === undefined')
  assert page.execute_script("return document.querySelectorAll('img').length"
                             ) == 0
  assert page.execute_script(
      "return document.querySelectorAll('script').length") == 2
  shown = page.execute_script(_TOKENS_JS)
  hostile = [r for r in shown if r['text'] == fixtures.HOSTILE]
  assert len(hostile) == 1
  assert '<script>' in hostile[0]['text'] and 'onerror=' in hostile[0]['text']
  assert console_errors(page) == []
  assert set(requested_urls(page)) <= {report['url']}


def test_filters_and_search(page, report):
  from selenium.webdriver.common.by import By
  box = page.find_element(By.CSS_SELECTOR, 'input[type=search]')
  box.send_keys('ROCKET')
  rows = wait_for(page, lambda d: (lambda r: r if r and all(
      'rocket' in x.text.lower() for x in r) else None)(
          d.find_elements('css selector', '[data-testid=doc-row]')))
  assert len(rows) == sum('rocket' in t.lower() for t in report['texts'])
  box.clear()
  page.execute_script("arguments[0].dispatchEvent(new Event('input'))", box)
  page.find_element(By.ID, 'wrong-only').click()
  proba = report['model'].predict_proba(report['texts'])
  y = report['model'].label_map.encode(report['labels'])
  wrong = int((np.argmax(proba, 1) != y).sum())
  rows = wait_for(page, lambda d: (lambda r: r if len(r) == wrong else None)(
      d.find_elements('css selector', '[data-testid=doc-row]')))
  assert all(r.get_attribute('data-true') != r.get_attribute('data-pred')
             for r in rows)
  # Most confidently wrong first.
  confidence = [float(r.find_elements(By.TAG_NAME, 'td')[3].text)
                for r in rows]
  assert confidence == sorted(confidence, reverse=True)


def test_multi_label_report_loads(browser, tmp_path):
  url = 'file://' + fixtures.make_multi_label_report(tmp_path)
  browser.get_log('performance')
  browser.get_log('browser')
  browser.get(url)
  rows = wait_for(browser, lambda d: d.find_elements(
      'css selector', '[data-testid=doc-row]'))
  assert len(rows) == len(fixtures.make_corpus()[0])
  assert browser.find_elements('css selector',
                               '[data-testid=confusion-cell]') == []
  assert any(',' in r.get_attribute('data-true') for r in rows)  # label sets
  assert browser.find_elements('css selector', '#calibration svg')
  assert console_errors(browser) == []
  assert set(requested_urls(browser)) == {url}


def test_margin_loss_report_loads(browser, tmp_path):
  url = 'file://' + fixtures.make_hinge_report(tmp_path)[1]
  browser.get_log('performance')
  browser.get_log('browser')
  browser.get(url)
  wait_for(browser, lambda d: d.find_elements(
      'css selector', '[data-testid=doc-row]'))
  headers = [h.text for h in browser.find_elements('css selector',
                                                   '.docs th')]
  assert 'margin' in headers and 'confidence' not in headers
  assert browser.find_elements('css selector', '#calibration *') == []
  assert console_errors(browser) == []
  assert set(requested_urls(browser)) == {url}


@pytest.fixture
def whatif_server(report):
  from linjax.cli import explore
  explorer = explore.load_explorer(report['model_dir'])
  server = explore.make_server(explorer, '127.0.0.1', 0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f'http://127.0.0.1:{server.server_address[1]}/'
  server.shutdown()
  server.server_close()
  thread.join(timeout=10)


def test_typing_a_text_updates_the_whatif_label(browser, report, whatif_server):
  from selenium.webdriver.common.by import By
  browser.get_log('performance')
  browser.get_log('browser')
  browser.get(whatif_server)
  box = wait_for(browser, lambda d: d.find_element(
      By.CSS_SELECTOR, '[data-testid=whatif-input]'))
  label = browser.find_element(By.CSS_SELECTOR, '[data-testid=whatif-label]')
  model = report['model']
  candidates = [t for t in report['texts'] if t.isascii()]
  predicted = model.predict(candidates)
  first = candidates[0]
  second = next(t for t, p in zip(candidates, predicted) if p != predicted[0])
  for text in (first, second, fixtures.HOSTILE):
    box.clear()
    box.send_keys(text)
    want = model.predict([text])[0]
    # The answer for this text is in: its highlights show it verbatim.
    wait_for(browser, lambda d, text=text: d.execute_script(
        "return document.querySelector('#whatif .output').textContent")
             == text)
    assert label.text == want
  # Clicking a class explains the prediction against it.
  other = next(n for n in model.label_map.names if n != label.text)
  browser.find_element(By.LINK_TEXT, other).click()
  wait_for(browser, lambda d: d.find_element(
      By.CSS_SELECTOR, '#whatif .explains').text.endswith('red: for ' + other))
  assert browser.execute_script('return window.__pwned === undefined')
  assert console_errors(browser) == []
  urls = requested_urls(browser)
  assert urls and all(u.startswith(whatif_server) for u in urls), urls
