"The rendered docs in headless Chromium: the quickstart page shows its figures and tables, and the sidebar groups the pages by part."
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
SITE = ROOT/'_site'
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']

def test_quickstart_page_in_headless_chromium():
    from playwright.sync_api import sync_playwright
    page_file = SITE/'90_tutorial.quickstart.html'
    assert page_file.is_file(), "no rendered docs: run `make docs` first (`make test` does)"
    assert Path(CHROMIUM).exists(), "no Chromium: install Debian's package (apt-get install chromium; .ci/run does)"
    parts = [e['section'] for e in yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents'] if isinstance(e, dict)]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto(page_file.resolve().as_uri())
        assert page.title() == 'Tutorial: quickstart'
        imgs = page.eval_on_selector_all('main img, body img', 'els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])')
        assert imgs and all(ok and w > 100 and h > 100 for ok, w, h in imgs), imgs     # every figure decoded, none broken
        tables = page.eval_on_selector_all('table', 'els => els.map(e => e.rows.length)')
        assert len(tables) >= 2 and all(n >= 2 for n in tables), tables                # header and rows
        assert page.eval_on_selector_all('nav#sidebar .section > span', 'els => els.map(e => e.textContent)') == parts
        links = page.eval_on_selector_all('nav#sidebar a', 'els => els.map(e => e.getAttribute("href"))')
        assert '90_tutorial.quickstart.html' in links and all((SITE/l).is_file() for l in links), links
        assert 'Traceback' not in page.inner_text('body')
        assert errors == []
        browser.close()
