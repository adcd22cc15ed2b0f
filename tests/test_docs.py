"""The documentation site as a reader meets it (built by `make docs` into _site/, which `make test` does first).

Every page: each internal link and picture resolves (page and anchor), no Quarto markup or notebook prompt leaks.
In headless Chromium, over HTTP as the site is served: the search box finds `metric_learner` and its hit opens the
entry; the sidebar has the parts of nbs/sidebar.yml; the quickstart shows its figures, tables, table of contents and
previous/next links; screenshots of three pages are saved in _site/screenshots/ for a person to look at."""

import functools, re, shutil, threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).parent.parent
SITE = ROOT / '_site'
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
FLAGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]


def pages() -> list[Path]:
    assert (SITE / 'index.html').is_file(), "no built docs: run `make docs` first (`make test` does)"
    return sorted(p for p in SITE.glob('*.html') if p.name != '404.html')


class Links(HTMLParser):
    "The ids, links and picture sources of one page."

    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a:
            self.ids.add(a['id'])
        if tag == 'a' and a.get('href'):
            self.links.append(a['href'])
        if tag == 'img' and a.get('src'):
            self.links.append(a['src'])


@functools.cache
def parsed(page: Path) -> Links:
    p = Links()
    p.feed(page.read_text())
    return p


def test_every_internal_link_resolves():
    broken, n = [], 0
    for page in pages():
        for href in parsed(page).links:
            u = urlsplit(href)
            if u.scheme or href.startswith('//'):
                continue  # the web: GitHub, fastai's docs, ...
            target = (page.parent / unquote(u.path)).resolve() if u.path else page
            n += 1
            if not target.is_file():
                broken.append(f'{page.name}: {href} (no such file)')
                continue
            if u.fragment and target.suffix == '.html' and unquote(u.fragment) not in parsed(target).ids:
                broken.append(f'{page.name}: {href} (no such anchor)')
    assert n > 1000, n
    assert not broken, '\n'.join(broken[:20])


def test_symbols_link_to_local_entries():
    "Backticked names of the library link to their entry on the local site, not to a published one."
    learner = parsed(SITE / 'metric.learner.html')
    assert {'metric_learner', 'learner.embed', 'lossparamlr'} <= learner.ids
    quick = parsed(SITE / 'tutorial.quickstart.html').links
    assert 'jobs.train.html#train' in quick and 'data.index.html#buildingindex' in quick
    for page in pages():
        assert 'building-metric.github.io' not in page.read_text(), page.name


def test_no_leaked_markup_or_prompts():
    for page in pages():
        h = page.read_text()
        for bad in ('{target=', 'In [', 'Out[', '#| echo', '#| export', '```'):
            assert bad not in h, f'{page.name} contains {bad!r}'
    # API entries: a signature and the parameters' table, methods attached to a class included
    h = (SITE / 'features.cache.html').read_text()
    assert 'id="featurecache.dataloaders"' in h and 'id="buildingindex.split"' in (SITE / 'data.index.html').read_text()
    i = h.index('id="featurecache.dataloaders"')
    entry = h[i : h.index('doc-entry', i + 40)]
    assert '<table>' in entry and 'Batch size' in entry and 'Default' in entry


@pytest.fixture(scope='module')
def server():
    pages()
    handler = functools.partial(
        type('Quiet', (SimpleHTTPRequestHandler,), {'log_message': lambda *a: None}), directory=str(SITE)
    )
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()


@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "no Chromium: install Debian's package (apt-get install chromium; make test does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def new_page(browser):
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.errors = []
    page.on('pageerror', lambda e: page.errors.append(str(e)))
    return page


def test_search_finds_metric_learner(server, browser):
    page = new_page(browser)
    page.goto(server + 'index.html')
    page.click('label.md-search__icon, .md-search__input')
    for attempt in range(4):  # a query typed before the search index is built can go unanswered: type it again
        page.fill('input.md-search__input', '')
        page.fill('input.md-search__input', 'metric_learner')
        try:
            page.locator('.md-search-result__item a').first.wait_for(timeout=15000)
            break
        except Exception:
            if attempt == 3:
                raise
    hits = page.eval_on_selector_all('.md-search-result__item a', 'els => els.map(e => e.getAttribute("href"))')
    assert 'metric.learner.html' in hits[0], hits[:3]  # the best hit: its page ...
    entry_hits = [i for i, h in enumerate(hits) if h.endswith('#metric_learner')]
    assert entry_hits and entry_hits[0] < 3, hits[:5]  # ... and its entry among the first
    page.locator('.md-search-result__item a').nth(entry_hits[0]).click()
    page.wait_for_url(re.compile(r'metric\.learner\.html(\?[^#]*)?#metric_learner$'))
    entry = page.locator('[id="metric_learner"]')
    assert entry.is_visible() and 'metric_learner' in entry.inner_text()
    box = entry.bounding_box()
    assert box and 0 <= box['y'] < 1000, box  # scrolled to the entry
    assert page.errors == []


def test_pages_in_chromium(server, browser):
    page = new_page(browser)
    page.goto(server + 'tutorial.quickstart.html')
    assert page.title().startswith('Tutorial: quickstart')
    parts = [
        e['section']
        for e in yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
        if isinstance(e, dict)
    ]
    side = page.eval_on_selector_all(
        'nav.md-nav--primary > ul > li.md-nav__item--nested > label', 'els => els.map(e => e.textContent.trim())'
    )
    assert side == parts, side
    imgs = page.eval_on_selector_all(
        'article img', 'els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])'
    )
    assert imgs and all(ok and w > 100 and h > 100 for ok, w, h in imgs), imgs  # every figure decoded
    tables = page.eval_on_selector_all('article table', 'els => els.map(e => e.rows.length)')
    assert len(tables) >= 2 and all(n >= 2 for n in tables), tables
    toc = page.eval_on_selector_all('nav.md-nav--secondary a', 'els => els.map(e => e.textContent.trim())')
    assert len(toc) >= 5 and any('Evaluate' in t for t in toc), toc
    footer = page.eval_on_selector_all('nav.md-footer__inner a', 'els => els.map(e => e.getAttribute("href"))')
    assert footer == ['index.html', 'tutorial.own_data.html'], footer  # previous / next
    assert 'Traceback' not in page.inner_text('article')
    # code scrolls instead of being clipped
    assert page.eval_on_selector('article pre > code', 'e => getComputedStyle(e).overflowX') in ('auto', 'scroll')
    assert page.errors == []
    shots = SITE / 'screenshots'
    shots.mkdir(exist_ok=True)
    for name in ('index', 'metric.learner', 'tutorial.quickstart'):
        page.goto(server + f'{name}.html')
        page.screenshot(path=str(shots / f'{name}.png'))
        assert (shots / f'{name}.png').stat().st_size > 20_000
    assert page.errors == []
