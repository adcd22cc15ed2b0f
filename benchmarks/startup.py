"""How fast the library answers from a cold start, each case in fresh processes, in one run.

Part `help`: `--help` and a bad flag of the console scripts next to `import torch` (settings are parsed before anything
heavy is imported). Part `answer`: the first answer about one photo. `import building_metric.search` against
`import torch`; `bm-search` on one photo against a 13-photo gallery (EfficientNet-Lite0's real ImageNet weights,
frozen) against the physical floor, a process that imports torch, loads the same model and runs one forward pass;
and the warm server (`bm-search --serve 1`) answering photos from 8 clients at once.

Run: python benchmarks/startup.py [--repeat 5] [--part help|answer|all]"""

import argparse, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1')
HELP_CASES = [
    ('python -c pass (the interpreter)', [sys.executable, '-c', 'pass'], 0),
    ('python -c "import torch"', [sys.executable, '-c', 'import torch'], 0),
    ('bm-train --help', [str(BIN / 'bm-train'), '--help'], 0),
    ('bm-train --bacth 16 (a bad flag)', [str(BIN / 'bm-train'), '--bacth', '16'], 2),
    ('bm-train --big_fusion_head 9 (a bad value)', [str(BIN / 'bm-train'), '--big_fusion_head', '9'], 2),
    ('python -m building_metric.cli --help', [sys.executable, '-m', 'building_metric.cli', '--help'], 0),
    ('bm-seg-infer --help', [str(BIN / 'bm-seg-infer'), '--help'], 0),
    (
        'python -c "import building_metric.jobs.train" (what a training job imports)',
        [sys.executable, '-c', 'import building_metric.jobs.train'],
        0,
    ),
]
# The floor of a first answer: torch, the model with its weights, one forward pass, and nothing else.
FLOOR = """
import torch, timm
from PIL import Image
from building_metric.weights import packaged_weights, state_dict_by_order
m = timm.create_model('efficientnet_lite0').eval()
m.load_state_dict(state_dict_by_order(torch.load(packaged_weights('efficientnet_lite0'), weights_only=True), m))
m.reset_classifier(0)
x = torch.from_numpy(__import__('numpy').asarray(Image.open(sys.argv[1]).convert('RGB').resize((224, 224)), 'float32')).permute(2, 0, 1)[None] / 255
with torch.inference_mode(): print(m(x).shape)
"""


def seconds(cmd, code=0, repeat=5):
    "Median wall time of `cmd` in `repeat` fresh processes (each checked for its exit code)."
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
        times.append(time.perf_counter() - t0)
        assert r.returncode == code, (cmd, r.returncode, r.stderr[-800:])
    return statistics.median(times)


def table(rows, base_name):
    base = dict(rows)[base_name]
    print(f"| {'command':<78} | seconds | ratio |\n|{'-' * 80}|---------|-------|")
    for name, s in rows:
        print(f"| {name:<78} | {s:7.2f} | {s / base:5.2f} |")
    print(f"(ratio = time / time of {base_name})\n")


def part_help(repeat):
    print(f"## Console scripts: median of {repeat} fresh processes each\n")
    table([(name, seconds(cmd, code, repeat)) for name, cmd, code in HELP_CASES], HELP_CASES[1][0])


def gallery(tmp: Path) -> tuple[Path, Path]:
    "13 real photographs, one building each, indexed with frozen EfficientNet-Lite0; and a new view of one of them."
    from building_metric.data.photos import photo_views, sample_photos

    photos = list(sample_photos().items())[:13]
    for name, im in photos:
        (tmp / 'known' / name).mkdir(parents=True)
        im.save(tmp / 'known' / name / '0.jpg')
    q = tmp / 'query.jpg'
    photo_views(photos[0][1], 1)[0].save(q)
    r = subprocess.run(
        [
            str(BIN / 'bm-index'),
            '--extractors',
            'efficientnet_lite0',
            '--gallery',
            str(tmp / 'known'),
            '--out',
            str(tmp / 'g'),
            '--workers',
            '0',
        ],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert r.returncode == 0, r.stderr[-800:]
    return tmp / 'g', q


def served(g: Path, q: Path, n: int = 96, clients: int = 8) -> tuple[float, float]:
    "Answers per second of `bm-search --serve 1` for `n` photos from `clients` clients at once, and one answer's latency."
    p = subprocess.Popen(
        [str(BIN / 'bm-search'), '--serve', '1', '--port', '0', '--gallery', str(g), '--k', '5'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    url = next(m.group(1) for line in p.stderr if (m := re.search(r' at (http://[^/\s]+:\d+)', line)))
    body = q.read_bytes()
    ask = lambda _: json.loads(
        urllib.request.urlopen(urllib.request.Request(f"{url}/answer", data=body), timeout=120).read()
    )
    ask(0)  # (the first answer warms the caches)
    t0 = time.perf_counter()
    [ask(0) for _ in range(10)]
    one = (time.perf_counter() - t0) / 10
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(ask, range(n)))
    rate = n / (time.perf_counter() - t0)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    assert p.returncode == 0
    return rate, one


def part_answer(repeat):
    tmp = Path(tempfile.mkdtemp())
    try:
        g, q = gallery(tmp)
        out = str(tmp / 'res')
        search = [str(BIN / 'bm-search'), '--gallery', str(g), '--query', str(q), '--out', out, '--workers', '0']
        rows = [
            ('python -c "import torch"', seconds([sys.executable, '-c', 'import torch'], repeat=repeat)),
            (
                'python -c "import building_metric.search"',
                seconds([sys.executable, '-c', 'import building_metric.search'], repeat=repeat),
            ),
        ]
        print(f"## The first answer: median of {repeat} fresh processes each (2-core CPU, no GPU)\n")
        table(rows, rows[0][0])
        rows = [
            (
                'floor: import torch + load EfficientNet-Lite0 + one forward pass',
                seconds([sys.executable, '-c', 'import sys' + FLOOR, str(q)], repeat=repeat),
            ),
            (
                'bm-search, one photo, 13-photo gallery, --pictures 0',
                seconds(search + ['--pictures', '0'], repeat=repeat),
            ),
            ('bm-search, one photo, 13-photo gallery (default: its picture drawn too)', seconds(search, repeat=repeat)),
        ]
        table(rows, rows[0][0])
        rate, one = served(g, q)
        cold = rows[1][1]
        print("## The warm server (bm-search --serve 1), the same gallery\n")
        print(
            f"one answer (one client): {one * 1000:.0f} ms, {cold / one:.0f}x faster than a bm-search process "
            f"({cold:.2f} s)\n96 photos from 8 clients at once: {rate:.1f} answers/s"
        )
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeat', type=int, default=5, help='runs of each command (the median is reported)')
    ap.add_argument('--part', default='all', choices=['help', 'answer', 'all'])
    a = ap.parse_args()
    if a.part in ('help', 'all'):
        part_help(a.repeat)
    if a.part in ('answer', 'all'):
        part_answer(a.repeat)
