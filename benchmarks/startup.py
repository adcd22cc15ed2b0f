"""How fast the console scripts answer: `--help` and a bad flag, next to `import torch`, each in a fresh process.

The console scripts parse their settings before importing anything heavy (`building_metric.config` needs only PyYAML
and fastcore), so help and argument errors come back before torch would have finished importing.
Run: python benchmarks/startup.py [--repeat 5]"""
import argparse, os, statistics, subprocess, sys, time
from pathlib import Path

BIN = Path(sys.executable).parent
CASES = [
    ('python -c pass (the interpreter)', [sys.executable, '-c', 'pass'], 0),
    ('python -c "import torch"', [sys.executable, '-c', 'import torch'], 0),
    ('bm-train --help', [str(BIN/'bm-train'), '--help'], 0),
    ('bm-train --bacth 16 (a bad flag)', [str(BIN/'bm-train'), '--bacth', '16'], 2),
    ('bm-train --big_fusion_head 9 (a bad value)', [str(BIN/'bm-train'), '--big_fusion_head', '9'], 2),
    ('python -m building_metric.cli --help', [sys.executable, '-m', 'building_metric.cli', '--help'], 0),
    ('bm-seg-infer --help', [str(BIN/'bm-seg-infer'), '--help'], 0),
    ('python -c "import building_metric.train" (what a training job imports)', [sys.executable, '-c', 'import building_metric.train'], 0),
]

def seconds(cmd, code, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE='1'))
        times.append(time.perf_counter() - t0)
        assert r.returncode == code, (cmd, r.returncode, r.stderr[-500:])
    return statistics.median(times)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeat', type=int, default=5, help='runs of each command (the median is reported)')
    a = ap.parse_args()
    rows = [(name, seconds(cmd, code, a.repeat)) for name, cmd, code in CASES]
    torch_s = rows[1][1]
    print(f"median of {a.repeat} fresh processes each; ratio = time / time of `import torch`\n")
    print(f"| {'command':<72} | seconds | ratio |\n|{'-' * 74}|---------|-------|")
    for name, s in rows: print(f"| {name:<72} | {s:7.2f} | {s / torch_s:5.2f} |")
