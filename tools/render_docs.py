"""Render processed notebooks to HTML without Quarto: `python tools/render_docs.py _proc _site`.

Fails if any page holds an error output. Also writes README.md from index.ipynb."""
import json, shutil, sys
from pathlib import Path

import nbformat
import yaml
from nbconvert import HTMLExporter, MarkdownExporter

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
pages = sorted(p for p in src.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
if not pages: sys.exit(f"no processed notebooks in {src}: run nbdev-proc-nbs first")
bad = []
for p in pages:
    d = json.loads(p.read_text())
    for c in d['cells']: c.get('metadata', {}).pop('execution', None)  # timings left by nbdev's processing: not valid nbformat
    nb = nbformat.reads(json.dumps(d), as_version=4)
    errs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if o.output_type == 'error']
    if errs: bad.append(f"{p.relative_to(src)}: {errs[0].get('ename')}: {errs[0].get('evalue')}")
    html, _ = HTMLExporter().from_notebook_node(nb)
    out = dst / p.relative_to(src).with_suffix('.html')
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
