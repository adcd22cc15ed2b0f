"""Retrieval metrics read from disk in blocks, in one and in two processes, against `retrieval_metrics` in memory.

    python benchmarks/eval_at_scale.py            # about 2 minutes on a 2-core CPU (BM_ROWS=40000 rows of 256, BM_CHUNK=2048)

The embeddings (classes of 20 images around random class centres, float32) are written to an HDF5 file.
Three ways to score them leave-one-out (P@1, Recall@K, R-precision, MAP@R), each in fresh processes:
- `retrieval_metrics` on the whole array read into memory (1 process x 2 threads): the baseline;
- `retrieval_metrics_chunked` reading the file in blocks of `chunk` rows (1 process x 2 threads);
- the same under `torchrun --nproc_per_node=2` (2 processes x 1 thread), the query blocks shared out.
Time: of the scoring alone (the file opened, the labels read), median of 3 runs. Memory: each process's peak
resident set minus its resident set before scoring. Prints one JSON line per way, then the ratios.
"""

import json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

N, DIM, PER = int(os.environ.get('BM_ROWS', 40_000)), 256, 20
CHUNK = int(os.environ.get('BM_CHUNK', 2048))


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path, way):
    import h5py
    from building_metric.core import init_distributed
    from building_metric.retrieval.metrics import retrieval_metrics, retrieval_metrics_chunked

    rank, world = init_distributed()
    with h5py.File(path) as f:
        y = f['labels'][:]
        base, times = rss_mb(), []
        for _ in range(3):
            t0 = time.perf_counter()
            m = (
                retrieval_metrics(f['embeddings'][:], y, ks=(1, 10), backend='torch')
                if way == 'memory'
                else retrieval_metrics_chunked(f['embeddings'], y, ks=(1, 10), chunk=CHUNK)
            )
            times.append(time.perf_counter() - t0)
    if rank == 0:
        print(
            json.dumps(
                dict(
                    way=way,
                    processes=world,
                    seconds=round(statistics.median(times), 2),
                    peak_extra_mb=round(rss_mb() - base),
                    map_at_r=round(m['map_at_r'], 6),
                )
            )
        )


def run(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE='1')
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"{cmd} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == '__main__':
    if len(sys.argv) == 3:
        child(sys.argv[1], sys.argv[2])
        sys.exit()
    import h5py, numpy as np

    path = Path(tempfile.mkdtemp()) / 'emb.h5'
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(N // PER), PER)
    centres = rng.standard_normal((N // PER, DIM)).astype(np.float32)
    with h5py.File(path, 'w') as f:
        f['labels'] = y
        e = f.create_dataset('embeddings', (N, DIM), 'float32', chunks=(1024, DIM))
        for s in range(0, N, 8192):
            e[s : s + 8192] = centres[y[s : s + 8192]] + 1.9 * rng.standard_normal((len(y[s : s + 8192]), DIM)).astype(
                np.float32
            )
    me = sys.executable, Path(__file__).resolve()
    res = [
        run([*me, path, 'memory'], 2),
        run([*me, path, 'chunked'], 2),
        run(
            [Path(sys.executable).parent / 'torchrun', '--standalone', '--nproc_per_node=2', me[1], path, 'chunked'], 1
        ),
    ]
    for r in res:
        print(json.dumps(r))
    assert len({r['map_at_r'] for r in res}) == 1, "the three ways disagree"
    print(
        json.dumps(
            {
                'rows': N,
                'dim': DIM,
                'chunk': CHUNK,
                'chunked / memory (time)': round(res[1]['seconds'] / res[0]['seconds'], 2),
                '2 processes / 1 process, chunked (time)': round(res[2]['seconds'] / res[1]['seconds'], 2),
                'chunked / memory (peak extra memory)': round(
                    res[1]['peak_extra_mb'] / max(res[0]['peak_extra_mb'], 1), 2
                ),
            }
        )
    )
