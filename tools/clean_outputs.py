"""Drop the outputs that say nothing to a reader from executed notebooks: `python tools/clean_outputs.py [nbs/X.ipynb ...]`.

- empty HTML outputs (what a progress bar leaves behind once it is done);
- warnings printed to stderr that carry a path of this machine (`/.../site-packages/x.py:12: FutureWarning: ...`).

Run it after executing notebooks, before `nbdev-clean`; tests/test_notebooks.py fails on committed notebooks that
still hold such outputs. Everything else is kept as it is."""

import json, re, sys
from pathlib import Path

WARNING = re.compile(r'^\s*(/|[A-Za-z]:\\)\S+:\d+: \w*Warning: ', re.M)


def noise(o: dict) -> bool:
    "An output a reader is better without."
    if o.get('output_type') == 'stream':
        return o.get('name') == 'stderr' and bool(WARNING.search(''.join(o.get('text', ''))))
    d = o.get('data', {})
    return 'text/html' in d and not ''.join(d['text/html']).strip() and not any(k.startswith('image/') for k in d)


def clean(path: Path) -> int:
    "Remove the noise outputs of one notebook; returns how many went."
    nb = json.loads(path.read_text())
    n = 0
    for c in nb['cells']:
        if c['cell_type'] != 'code':
            continue
        keep = [o for o in c.get('outputs', []) if not noise(o)]
        n += len(c['outputs']) - len(keep)
        c['outputs'] = keep
    if n:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return n


if __name__ == '__main__':
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path(__file__).parent.parent.joinpath('nbs').glob('*.ipynb'))
    for p in paths:
        if n := clean(p):
            print(f"{p}: {n} outputs removed")
