"""Render processed notebooks to HTML without Quarto: `python tools/render_docs.py _proc _site`.

Fails if any page holds an error output. Also writes README.md from index.ipynb."""
import json, shutil, sys
from pathlib import Path

import nbformat
import yaml
from nbconvert import HTMLExporter, MarkdownExporter

src, dst = Path(sys.argv[1]), Path(sys.argv[2])

def front_matter(nb) -> dict:
    "The Quarto front matter nbdev-proc-nbs puts in a page's first raw cell (title, description)."
    c = nb.cells[0] if nb.cells else None
    if c is None or c.cell_type != 'raw' or not c.source.startswith('---'): return {}
    return yaml.safe_load(c.source.split('---')[1]) or {}

def sidebar(current:str) -> str:
    "The site's navigation from nbs/sidebar.yml (the same file Quarto reads): pages grouped by part."
    side = yaml.safe_load(Path('nbs/sidebar.yml').read_text())['website']['sidebar']['contents']
    def link(nb):
        page = str(Path(nb).with_suffix('.html'))
        cls = ' class="current"' if page == current else ''
        return f'<li><a href="{page}"{cls}>{titles.get(page, Path(nb).stem)}</a></li>'
    items = [link(e) if isinstance(e, str) else
             f'<li class="section"><span>{e["section"]}</span><ul>{"".join(link(n) for n in e["contents"])}</ul></li>' for e in side]
    return f'<nav id="sidebar"><ul>{"".join(items)}</ul></nav>'

STYLE = """<style>nav#sidebar{position:fixed;top:0;left:0;width:15rem;height:100%;overflow:auto;padding:1rem;box-sizing:border-box;
border-right:1px solid #ddd;background:#fafafa;font:14px sans-serif}nav#sidebar ul{list-style:none;padding-left:.8rem;margin:.2rem 0}
nav#sidebar>ul{padding-left:0}nav#sidebar .section>span{font-weight:bold;display:block;margin-top:.6rem}
nav#sidebar a.current{font-weight:bold}body{margin-left:16rem!important}</style>"""
pages = sorted(p for p in src.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
if not pages: sys.exit(f"no processed notebooks in {src}: run nbdev-proc-nbs first")
bad, titles, books = [], {}, []
for p in pages:
    d = json.loads(p.read_text())
    for c in d['cells']: c.get('metadata', {}).pop('execution', None)  # timings left by nbdev's processing: not valid nbformat
    nb = nbformat.reads(json.dumps(d), as_version=4)
    errs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if o.output_type == 'error']
    if errs: bad.append(f"{p.relative_to(src)}: {errs[0].get('ename')}: {errs[0].get('evalue')}")
    page = str(p.relative_to(src).with_suffix('.html'))
    fm = front_matter(nb)
    titles[page] = fm.get('title', p.stem)
    if fm:  # the front matter becomes the page's heading, as Quarto shows it
        nb.cells[0] = nbformat.v4.new_markdown_cell(f"# {fm.get('title', '')}\n\n> {fm.get('description', '')}" if fm.get('description') else f"# {fm.get('title', '')}")
    for c in nb.cells:   # Quarto's `#| echo: false`: the output without its code
        if c.cell_type == 'code' and any(l.strip().replace(' ', '') == '#|echo:false' for l in c.source.splitlines()):
            c.metadata.setdefault('transient', {})['remove_source'] = True
    books.append((p, nb, page))
for p, nb, page in books:
    html, _ = HTMLExporter().from_notebook_node(nb)
    html = html.replace('<title>Notebook</title>', f'<title>{titles[page]}</title>', 1).replace('</head>', STYLE + '</head>', 1)
    i = html.index('>', html.index('<body')) + 1
    html = html[:i] + sidebar(page) + html[i:]
    out = dst / page
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html)
    print(f"{out} ({len(html) // 1024} KiB)")
    if p.name == 'index.ipynb' and p.parent == src:
        md, _ = MarkdownExporter().from_notebook_node(nb)
        if md.startswith('---'):  # Quarto front matter -> a markdown title and description
            _, fm, md = md.split('---', 2)
            meta = yaml.safe_load(fm)
            md = f"# {meta.get('title', '')}\n\n> {meta.get('description', '')}\n\n" + md.lstrip()
        Path('README.md').write_text(md.replace('](images/', '](nbs/images/'))  # pictures live beside the notebooks
        print("README.md")
if (src.parent/'nbs'/'images').is_dir() or Path('nbs/images').is_dir():
    shutil.copytree('nbs/images', dst/'images', dirs_exist_ok=True)
if bad: sys.exit("pages with error outputs:\n" + '\n'.join(bad))
