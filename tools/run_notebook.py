"""Run a notebook top to bottom and keep its outputs in place (what a reader sees on its docs page), with the same
executor `nbdev-test` uses. Usage: python tools/run_notebook.py nbs/NAME.ipynb [...]"""

import sys

from execnb.shell import CaptureShell

if __name__ == '__main__':
    for p in sys.argv[1:]:
        CaptureShell().execute(p, p, exc_stop=True)
        print(f"ran {p}")
