"""The documentation site without Quarto: `python tools/docs_site.py _proc _mkdocs`, then `mkdocs build -f _mkdocs/mkdocs.yml`.

Quarto builds an nbdev site in two steps: each processed notebook becomes a Markdown page, then the pages become a
site. This script is the first step for mkdocs-material, which does the second (theme, sidebar, search, table of
contents, previous/next links). It reads the notebooks as `nbdev-proc-nbs` leaves them and translates what only Quarto
understands:

- the front matter (`title`, `description`, `output-file`) becomes the page's title, lead and file name, so pages
  are named as nbdev names them (`04c_metric.learner.ipynb` -> `metric.learner.html`);
- cell options: `#| echo: false` shows the output without its code, `#| include: false` shows neither, `#| fig-cap`
  captions the figure;
- `show_doc` entries get their anchor (`#learner.embed`, as nbdev links them), a signature without the parameter
  comments and, below it, the table of parameters (type, default, details) from the docments;
- links to the nbdev doc site become links between the local pages; a backticked name in a page's description is
  linked as nbdev links the rest of the page;
- outputs: pictures become files, tables stay HTML, printed text becomes a text block; empty progress-bar outputs,
  warnings carrying a local path and widget state (which needs a live kernel) are left out; a page with an error
  output fails the build.

The site's navigation is `nbs/sidebar.yml` (the file Quarto reads), its settings `mkdocs.yml` at the top of the
repository. The same Markdown of `index.ipynb`, with links to the published site, is written to README.md.
"""

import base64, html, importlib, inspect, json, re, shutil, sys
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
from clean_outputs import noise  # empty progress bars, warnings carrying a local path

ANSI = re.compile(r'\x1b\[[0-9;?]*[ -/]*[@-~]')


def settings() -> dict:
    "The doc site nbdev links to, from the library's symbol index."
    from building_metric._modidx import d

    s = d['settings']
    return dict(doc_url=s['doc_host'].rstrip('/') + s['doc_baseurl'].rstrip('/') + '/', syms=d['syms'])


def front_matter(nb: dict) -> dict:
    "The Quarto front matter nbdev-proc-nbs puts in a page's first raw cell."
    c = nb['cells'][0] if nb['cells'] else None
    if c is None or c['cell_type'] != 'raw' or not src(c).startswith('---'):
        return {}
    return yaml.safe_load(src(c).split('---')[1]) or {}


def src(c) -> str:
    return ''.join(c['source']) if isinstance(c['source'], list) else c['source']


def options(code: str) -> tuple[dict, str]:
    "Quarto's `#| key: value` cell options, and the code without them."
    opts, lines = {}, code.splitlines()
    while lines and lines[0].startswith('#|'):
        k, _, v = lines.pop(0)[2:].partition(':')
        opts[k.strip()] = yaml.safe_load(v) if v.strip() else True
    return opts, '\n'.join(lines).strip('\n')


def fence(text: str, lang: str, cls: str = '') -> str:
    "A fenced block that its own backticks cannot close."
    n = max([3] + [len(m) + 1 for m in re.findall(r'`{3,}', text)])
    attrs = f' {{ .{lang} .{cls} }}' if cls else lang
    return f"{'`' * n}{attrs}\n{text}\n{'`' * n}"


def terminal_text(t: str) -> str:
    "Printed text as a terminal shows it: colours dropped, each line's last carriage-return rewrite kept."
    t = ANSI.sub('', t)
    return '\n'.join(l.rsplit('\r', 1)[-1] for l in t.split('\n')).rstrip('\n')


class _Cells(HTMLParser):
    "The text of each cell of each row of an HTML table."

    def __init__(self):
        super().__init__()
        self.rows, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == 'tr':
            self.rows.append([])
        elif tag in ('td', 'th') and self.rows:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self.cell is not None:
            self.rows[-1].append(' '.join(''.join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def dataframe_markdown(h: str) -> str | None:
    "A pandas DataFrame's HTML as a Markdown table, which GitHub and the site both show as a table (None for other HTML)."
    if 'class="dataframe"' not in h or h.count('<table') != 1:
        return None
    p = _Cells()
    p.feed(h)
    rows = [r for r in p.rows if r]
    if len(rows) < 2:
        return None
    if len(rows) > 2 and rows[1][0] and not any(rows[1][1:]):
        rows = [[rows[1][0]] + rows[0][1:]] + rows[2:]  # the index's name
    n = max(map(len, rows))
    line = lambda r: '| ' + ' | '.join(c.replace('|', '\\|') for c in r + [''] * (n - len(r))) + ' |'
    return '\n'.join([line(rows[0]), '|' + '---|' * n] + [line(r) for r in rows[1:]])


class Page:
    "One processed notebook as a Markdown page."

    def __init__(self, path: Path, site: dict):
        self.path, self.site = path, site
        self.nb = json.loads(path.read_text())
        self.fm = front_matter(self.nb)
        self.name = Path(self.fm.get('output-file', path.with_suffix('.html').name)).stem  # metric.learner
        self.title = str(self.fm.get('title', self.name))
        self.files, self.errors, self.n_img = {}, [], 0

    # links ---------------------------------------------------------------------------------------------------
    def local_links(self, md: str) -> str:
        "Links to the published nbdev site, or to a notebook, point at the local page (mkdocs checks page and anchor)."
        md = md.replace('](' + self.site['doc_url'], '](').replace('href="' + self.site['doc_url'], 'href="')
        names = self.site['pages']  # notebook stem or page name -> page name

        def page(m):
            name = names.get(m.group(1))
            return m.group(0) if name is None else f"]({name}.md{m.group(3) or ''})"

        return re.sub(r'\]\(([\w.\-]+?)\.(html|ipynb)(#[^)\s]*)?\)', page, md)

    def linkify(self, md: str) -> str:
        "Backticked names of the library as links to their entries, as nbdev-proc-nbs does for the page's cells."
        from nbdev.doclinks import NbdevLookup

        return NbdevLookup().linkify(md)

    # show_doc ------------------------------------------------------------------------------------------------
    def symbol(self, name: str):
        "The object a `show_doc` entry of this page documents (None if it cannot be found)."
        anchor = f'{self.name}.html#{name.lower()}'
        for mod, syms in self.site['syms'].items():
            for qual, (url, _) in syms.items():
                if url == anchor:
                    obj = importlib.import_module(mod)
                    try:
                        for part in qual[len(mod) + 1 :].split('.'):
                            obj = getattr(obj, part)
                        return obj
                    except AttributeError:
                        return None
        return None

    def params_table(self, name: str) -> str:
        "The docments of an entry as nbdev's table: each parameter's type, default and details, then the return."
        obj = self.symbol(name)
        if obj is None or not callable(obj):
            return ''
        from fastcore.docments import docments

        try:
            docs = docments(obj, full=True, returns=True)
        except Exception:
            return ''  # a builtin or C function without a Python signature
        try:
            code = inspect.getsource(obj)
        except (OSError, TypeError):
            code = ''
        for star in re.findall(
            r'\*\*?(\w+),?[ \t]*#[ \t]*(.+)', code
        ):  # fastcore gives `**kw, # ...`'s comment to the return
            if star[0] in docs and not docs[star[0]]['docment']:
                docs[star[0]]['docment'] = star[1].strip()
                if docs.get('return', {}).get('docment') == star[1].strip():
                    docs['return']['docment'] = None

        def cell(x) -> str:
            return html.escape(str(x)).replace('|', '\\|').replace('\n', ' ')

        def anno(a) -> str:
            if a is inspect._empty:
                return ''
            return cell(inspect.formatannotation(a) if not isinstance(a, str) else a)

        rows = []
        for k, v in docs.items():
            if k == 'return' or k in ('self', 'cls'):
                continue
            d = v['default']
            default = '' if d is inspect._empty else f'`{d!r}`' if len(repr(d)) < 40 else '…'
            rows.append(f"| {cell(k)} | {anno(v['anno'])} | {default} | {cell(v['docment'] or '')} |")
        ret = docs.get('return')
        if ret and (ret['docment'] or ret['anno'] not in (inspect._empty, None, type(None))):
            rows.append(f"| **Returns** | {anno(ret['anno'])} |  | {cell(ret['docment'] or '')} |")
        if not rows or not any(v.get('docment') for v in docs.values()):
            return ''
        return '\n'.join(['|  | **Type** | **Default** | **Details** |', '|---|---|---|---|'] + rows)

    def show_doc(self, md: str) -> str:
        "An nbdev 3 `show_doc` entry with its anchor, a clean signature and the parameters' table."
        m = re.search(r'^#{2,4} (\S+)[ \t]*$', md, flags=re.M)
        if not m:
            return md
        name = m.group(1)
        md = re.sub(r'^\s*---\s*\n', '', md)  # Quarto's rule before each entry
        md = md.replace(m.group(0), f'{m.group(0)} {{ #{name.lower()} .doc-entry }}', 1)
        md = re.sub(r'\{target="_blank" style="[^"]*"\}', '{ .doc-source target="_blank" }', md)

        def clean_sig(s):  # comments go to the table
            sig = '\n'.join(re.sub(r'\s+# .*$', '', l) for l in s.group(1).splitlines())
            return '```python\n' + sig + '\n```'

        md = re.sub(r'```python\n(.*?)\n```', clean_sig, md, count=1, flags=re.S)
        table = self.params_table(name)
        return md.rstrip() + ('\n\n' + table if table else '')

    # outputs -------------------------------------------------------------------------------------------------
    def image(self, data: str, ext: str, cap: str = '') -> str:
        self.n_img += 1
        fn = f'{self.name}_files/{self.n_img}.{ext}'
        self.files[fn] = data.encode() if ext == 'svg' else base64.b64decode(data)
        return f'![{cap}]({fn})' + (f'\n\n<p class="caption">{html.escape(cap)}</p>' if cap else '')

    def outputs(self, outs: list, opts: dict) -> list[str]:
        res, stream = [], []

        def flush():
            if stream and (t := terminal_text(''.join(stream))).strip():
                res.append(fence(t, 'text', 'cell-output'))
            stream.clear()

        for o in outs:
            if noise(o):
                continue
            if o['output_type'] == 'stream':
                stream.append(src({'source': o['text']}))
                continue
            flush()
            if o['output_type'] == 'error':
                self.errors.append(f"{o.get('ename')}: {o.get('evalue')}")
                continue
            d = {k: src({'source': v}) if not isinstance(v, dict) else v for k, v in o.get('data', {}).items()}
            cap = str(opts.get('fig-cap', ''))
            if 'text/html' in d:  # the richest form a notebook shows, as Jupyter chooses
                h = d['text/html'].strip()
                if not h or ('<progress' in h and '<table' not in h):
                    continue  # an emptied or unfinished progress bar
                if (t := dataframe_markdown(h)) is not None:
                    res.append(t)
                    continue
                res.append(f'<div class="cell-output-html" markdown="0">\n{self.local_links(h)}\n</div>')
            elif 'text/markdown' in d and d['text/markdown'].strip():
                md = self.local_links(d['text/markdown'])
                res.append(self.show_doc(md) if re.search(r'^\[source\]\(', md, flags=re.M) else md)
            elif 'image/png' in d:
                res.append(self.image(d['image/png'], 'png', cap))
            elif 'image/jpeg' in d:
                res.append(self.image(d['image/jpeg'], 'jpg', cap))
            elif 'image/svg+xml' in d:
                res.append(self.image(d['image/svg+xml'], 'svg', cap))
            elif 'application/vnd.jupyter.widget-view+json' in d:
                continue  # needs a live kernel
            elif 'text/plain' in d and d['text/plain'].strip():
                res.append(fence(terminal_text(d['text/plain']), 'text', 'cell-output'))
        flush()
        return res

    # the page --------------------------------------------------------------------------------------------------
    def markdown(self) -> str:
        parts = [f'# {self.title}']
        if self.fm.get('description'):
            parts.append(
                f'<p class="description" markdown="span">{self.local_links(self.linkify(str(self.fm["description"])))}</p>'
            )
        for c in self.nb['cells'][1 if self.fm else 0 :]:
            if c['cell_type'] == 'markdown':
                s = src(c)
                if s.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'):
                    continue
                parts.append(self.local_links(s))
            elif c['cell_type'] == 'code':
                opts, code = options(src(c))
                if opts.get('include') is False:
                    continue
                if code and opts.get('echo') is not False:
                    parts.append(fence(code, 'python'))
                if opts.get('output') is not False:
                    parts.extend(self.outputs(c.get('outputs', []), opts))
        return '\n\n'.join(p.strip('\n') for p in parts if p.strip()) + '\n'


def nav(proc: Path, pages: dict) -> list:
    "The sidebar of nbs/sidebar.yml as mkdocs' nav: the pages by part, titled as their notebooks title them."

    def entry(nb):
        p = pages[nb]
        return {p.title: f'{p.name}.md'}

    side = yaml.safe_load((proc / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    return [entry(e) if isinstance(e, str) else {e['section']: [entry(n) for n in e['contents']]} for e in side]


def readme(page: Page, md: str) -> str:
    "README.md: the index page with links to the published site and its pictures in the repository."
    md = re.sub(
        r'\]\((?![a-z]+:|#|/)([^)\s]+?)\.(?:md|html)(#[^)\s]*)?\)',
        lambda m: f"]({page.site['doc_url']}{m.group(1)}.html{m.group(2) or ''})",
        md,
    )
    md = md.replace('](images/', '](nbs/images/').replace(f'({page.name}_files/', '(nbs/images/index_files/')
    md = re.sub(r'^# (.*)\n\n<p class="description" markdown="span">(.*?)</p>', r'# \1\n\n> \2', md, count=1)
    return md.replace('``` { .text .cell-output }', '```text')


def main(proc: Path, out: Path):
    site = settings()
    nbs = sorted(p for p in proc.glob('*.ipynb'))
    if not nbs:
        sys.exit(f"no processed notebooks in {proc}: run nbdev-proc-nbs first")
    pages = {p.name: Page(p, site) for p in nbs}
    site['pages'] = {**{Path(nb).stem: p.name for nb, p in pages.items()}, **{p.name: p.name for p in pages.values()}}
    docs = out / 'pages'
    if docs.exists():
        shutil.rmtree(docs)
    docs.mkdir(parents=True)
    bad = []
    for nb, page in pages.items():
        md = page.markdown()
        (docs / f'{page.name}.md').write_text(md)
        for fn, data in page.files.items():
            (docs / fn).parent.mkdir(exist_ok=True)
            (docs / fn).write_bytes(data)
        bad += [f'{nb}: {e}' for e in page.errors]
        if page.name == 'index':
            (ROOT / 'README.md').write_text(readme(page, md))
            for fn, data in page.files.items():  # the README's pictures, the same bytes each time
                dest = ROOT / 'nbs' / 'images' / 'index_files' / Path(fn).name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists() or dest.read_bytes() != data:
                    dest.write_bytes(data)
    if (proc / 'images').is_dir():
        shutil.copytree(proc / 'images', docs / 'images')
    shutil.copy(ROOT / 'tools' / 'docs.css', docs / 'docs.css')
    cfg = {
        'INHERIT': str(Path('..') / 'mkdocs.yml') if out.resolve().parent == ROOT else str(ROOT / 'mkdocs.yml'),
        'docs_dir': 'pages',
        'site_dir': str((ROOT / '_site').resolve()),
        'nav': nav(proc, pages),
    }
    (out / 'mkdocs.yml').write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    print(f"{len(pages)} pages in {docs}")
    if bad:
        sys.exit("pages with error outputs:\n" + '\n'.join(bad))


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[0])
    main(Path(sys.argv[1]), Path(sys.argv[2]))
