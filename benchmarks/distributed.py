"""Two processes of one thread against one process of two threads, for feature extraction and for head training.

    python benchmarks/distributed.py            # about 4 minutes on a 2-core CPU

Both sides run the console scripts as a user would (`bm-extract` / `bm-train` with OMP_NUM_THREADS=2, against
`torchrun --nproc_per_node=2 -m building_metric.cli ...` with OMP_NUM_THREADS=1) on the same synthetic data,
and the times compared are the ones the scripts report for the work itself (`seconds` of the extraction,
`train_seconds` of the training), so the start-up of the processes is left out. Prints one JSON line per
measurement and the ratios (above 1: two processes are faster).
"""

import json, os, subprocess, sys, tempfile
from pathlib import Path

from building_metric.data.index import BuildingIndex
from building_metric.data.synth import write_synthetic

BIN = Path(sys.executable).parent


def run(cmd, threads):
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"{cmd[0]} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout)


def both(
    script, args, outs, key
):  # settings as key=value: torchrun takes abbreviations of its own flags anywhere (--m, --log)
    one = run([BIN / f'bm-{script}', *args, f'out={outs[0]}'], threads=2)
    two = run(
        [
            BIN / 'torchrun',
            '--standalone',
            '--nproc_per_node=2',
            '-m',
            'building_metric.cli',
            script,
            *args,
            f'out={outs[1]}',
        ],
        threads=1,
    )
    res = {
        'task': script,
        '1 process x 2 threads (s)': one[key],
        '2 processes x 1 thread (s)': two[key],
        'ratio': round(one[key] / two[key], 2),
    }
    print(json.dumps(res))
    return res, one, two


if __name__ == '__main__':
    work = Path(tempfile.mkdtemp())
    write_synthetic(work / 'photos', 'folders', n_identities=48, views=8, size=96)
    BuildingIndex.from_path(work / 'photos', progress=False).split(by='class', seed=0).save(work / 'index.csv')
    # a full-size MobileNetV3-L with random weights: the real extraction workload, without a download
    ext, _, _ = both(
        'extract',
        [
            f"data={work / 'index.csv'}",
            'extractors=mobilenet',
            'random_weights=true',
            'workers=1',
            'bs=32',
            'shard_rows=64',
        ],
        (work / 'one.h5', work / 'two.h5'),
        'seconds',
    )
    cache = work / 'one.h5'
    # the large fusion head (size 2) with ProxyAnchor on m-per-class batches; --batch is the global batch on both sides
    tr, _, _ = both(
        'train',
        [
            f'data={cache}',
            'mobilenet=1',
            'big_fusion_head=2',
            'epochs=6',
            'batch=64',
            'sampler=m_per_class',
            'm=4',
            'lr=1e-3',
            'eval_every=1000',
            'patience=0',
            'log=none',
        ],
        (work / 'one_run', work / 'two_run'),
        'train_seconds',
    )
    print(json.dumps({'extraction ratio': ext['ratio'], 'training ratio': tr['ratio']}))
