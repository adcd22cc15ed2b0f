"""Retrieval metrics of 20,000 x 512 embeddings: `retrieval_metrics` vs the bare similarity matmul it needs,
and vs pytorch-metric-learning's AccuracyCalculator with its torch KNN (CustomKNN over CosineSimilarity).

Each method runs in its own subprocess (so that peak memory is its own), on the same seeded embeddings
(2,000 classes x 10 images around random class centres). Time: median of N runs inside the subprocess.
Peak memory: the subprocess's peak resident set minus its resident set once the embeddings exist.
Run: python benchmarks/retrieval.py [runs]
     python benchmarks/retrieval.py --large   # 200,000 x 512 (20,000 classes): building_metric only, peak memory
"""

import json, resource, statistics, subprocess, sys, time

import os

N, DIM = int(os.environ.get('BM_ROWS', 20_000)), 512
CLASSES = N // 10


def data():
    import torch

    g = torch.Generator().manual_seed(0)
    y = torch.arange(CLASSES).repeat_interleave(N // CLASSES)
    x = torch.nn.functional.normalize(torch.randn(CLASSES, DIM, generator=g), dim=1)[y] + 0.09 * torch.randn(
        N, DIM, generator=g
    )
    return x, y


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method, runs):
    import torch

    torch.set_num_threads(2)
    x, y = data()
    if method == 'matmul':
        xn = torch.nn.functional.normalize(x, dim=1)
        f = lambda: xn @ xn.T
    elif method == 'building_metric':
        from building_metric.retrieval.metrics import retrieval_metrics

        f = lambda: retrieval_metrics(x, y, ks=(1,), backend="torch")
    else:
        from pytorch_metric_learning.distances import CosineSimilarity
        from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
        from pytorch_metric_learning.utils.inference import CustomKNN

        calc = AccuracyCalculator(
            include=('precision_at_1', 'r_precision', 'mean_average_precision_at_r'),
            k='max_bin_count',
            knn_func=CustomKNN(CosineSimilarity()),
        )
        f = lambda: calc.get_accuracy(x, y, ref_includes_query=True)
    base = rss_mb()
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    res = {k: float(v) for k, v in out.items()} if isinstance(out, dict) else None
    print(
        json.dumps(
            dict(method=method, time=statistics.median(times), times=times, peak_extra_mb=rss_mb() - base, result=res)
        )
    )


def main(runs=3):
    rows = {}
    for m in ('matmul', 'building_metric', 'pml'):
        p = subprocess.run(
            [sys.executable, __file__, '--child', m, str(runs)], capture_output=True, text=True, check=True
        )
        rows[m] = json.loads(p.stdout.strip().splitlines()[-1])
    print(f"{N:,} x {DIM} embeddings, {CLASSES:,} classes, leave-one-out; median of {runs} runs, 2 threads")
    for m, r in rows.items():
        print(
            f"   {m:16s} {r['time']:6.2f} s   peak extra memory {r['peak_extra_mb']:7.0f} MB   (runs: {', '.join(f'{t:.2f}' for t in r['times'])})"
        )
    ours, theirs = rows['building_metric']['result'], rows['pml']['result']
    print(
        f"   building_metric / matmul: {rows['building_metric']['time'] / rows['matmul']['time']:.2f}x;"
        f" building_metric / AccuracyCalculator: {rows['building_metric']['time'] / rows['pml']['time']:.2f}x"
    )
    print(
        f"   MAP@R {ours['map_at_r']:.6f} vs {theirs['mean_average_precision_at_r']:.6f}; P@1 {ours['precision_at_1']:.6f} vs {theirs['precision_at_1']:.6f}"
    )


def large():
    "200,000 x 512 leave-one-out with retrieval_metrics: time and peak memory beyond the embeddings (the matmul alone would need 160 GB)."
    env = dict(os.environ, BM_ROWS='200000')
    p = subprocess.run(
        [sys.executable, __file__, '--child', 'building_metric', '1'],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    r = json.loads(p.stdout.strip().splitlines()[-1])
    print(
        f"200,000 x {DIM} embeddings, 20,000 classes, leave-one-out, 2 threads: {r['time']:.0f} s, peak extra memory {r['peak_extra_mb']:.0f} MB;"
        f" MAP@R {r['result']['map_at_r']:.6f}"
    )


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        child(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == '--large':
        large()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
