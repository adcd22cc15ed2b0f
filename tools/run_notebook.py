"""Run a notebook top to bottom and keep its outputs in place (what a reader sees on its docs page), with the same
executor `nbdev-test` uses. Usage: python tools/run_notebook.py nbs/NAME.ipynb [...]"""

import sys

from execnb.shell import CaptureShell

if __name__ == '__main__':
    paths, sys.argv[1:] = sys.argv[1:], []  # (a notebook's own argument parsing must not read these paths)
    for p in paths:
        CaptureShell().execute(p, p, exc_stop=True)
        print(f"ran {p}")
