"The committed notebooks are the documentation's pages: their outputs hold nothing a reader is better without."

from pathlib import Path
import json, sys

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
from clean_outputs import noise
from docs_site import dataframe_markdown


def test_no_empty_progress_bars_or_local_warnings():
    found = []
    for p in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, c in enumerate(json.loads(p.read_text())['cells']):
            found += [f'{p.name} cell {i}' for o in c.get('outputs', []) if noise(o)]
    assert not found, f"outputs to drop (run `python tools/clean_outputs.py`, then nbdev-clean): {found[:10]}"


def test_noise_is_recognised():
    assert noise(
        {
            'output_type': 'display_data',
            'data': {'text/html': ['\n'], 'text/plain': ['<IPython.core.display.HTML object>']},
        }
    )
    assert noise(
        {
            'output_type': 'stream',
            'name': 'stderr',
            'text': ['/x/site-packages/torch/jit/_script.py:1491: FutureWarning: `torch.jit.script` is deprecated.\n'],
        }
    )
    assert not noise({'output_type': 'stream', 'name': 'stderr', 'text': ['skipped 2 unreadable files\n']})
    assert not noise(
        {'output_type': 'display_data', 'data': {'text/html': ['<table class="fastprogress">...</table>']}}
    )


def test_dataframes_become_markdown_tables():
    "A DataFrame shows as a table on GitHub's view of the README, not as its HTML and CSS."
    import pandas as pd

    df = pd.DataFrame({'building': ['a|b', 'c'], 'confidence': [0.5, 0.25]})
    assert (
        dataframe_markdown(df.to_html())
        == "|  | building | confidence |\n|---|---|---|\n| 0 | a\\|b | 0.50 |\n| 1 | c | 0.25 |"
    )
    assert dataframe_markdown(df.set_index('building').to_html()).splitlines()[0] == '| building | confidence |'
    assert dataframe_markdown('<table><tr><td>x</td></tr></table>') is None  # other HTML stays HTML
