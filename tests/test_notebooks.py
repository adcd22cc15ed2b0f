"The committed notebooks are the documentation's pages: their outputs hold nothing a reader is better without."
from pathlib import Path
import json, sys

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT/'tools'))
from clean_outputs import noise

def test_no_empty_progress_bars_or_local_warnings():
    found = []
    for p in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, c in enumerate(json.loads(p.read_text())['cells']):
            found += [f'{p.name} cell {i}' for o in c.get('outputs', []) if noise(o)]
    assert not found, f"outputs to drop (run `python tools/clean_outputs.py`, then nbdev-clean): {found[:10]}"

def test_noise_is_recognised():
    assert noise({'output_type': 'display_data', 'data': {'text/html': ['\n'], 'text/plain': ['<IPython.core.display.HTML object>']}})
    assert noise({'output_type': 'stream', 'name': 'stderr', 'text': ['/x/site-packages/torch/jit/_script.py:1491: FutureWarning: `torch.jit.script` is deprecated.\n']})
    assert not noise({'output_type': 'stream', 'name': 'stderr', 'text': ['skipped 2 unreadable files\n']})
    assert not noise({'output_type': 'display_data', 'data': {'text/html': ['<table class="fastprogress">...</table>']}})
