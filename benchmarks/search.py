"""Search at scale, three measurements in one run (each against the baseline named in the README):

1. exact search (`ExactIndex`) of 1,000 queries in a 200,000 x 512 gallery against one bare `q @ g.T` + `topk`
   over the same data, with the peak memory of each (measured in a fresh process: resident set growth);
2. approximate search (faiss IVF, and HNSW with --hnsw) on 1,000,000 x 128 clustered embeddings: per-query latency
   and recall@10 against exact search, for several `nprobe`;
3. building a gallery (`BuildingGallery.build`: extraction, embedding, index, calibration) against extraction alone.

Usage: python benchmarks/search.py [--part exact|ann|index|all] [--hnsw] [--images 400]
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

def _status(key:str) -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key + ':'): return int(line.split()[1]) / 1024
    return float('nan')

def peak_reset() -> float:
    "Reset the peak resident set (Linux: /proc/self/clear_refs) and return the resident set now, in MB."
    Path('/proc/self/clear_refs').write_text('5')
    return _status('VmRSS')

def unit(x): return x / np.linalg.norm(x, axis=1, keepdims=True)

def exact_one(which:str, n=200_000, d=512, m=1000, k=10):
    "In a fresh process: time and peak memory growth of one way of searching."
    from building_metric.search import ExactIndex
    rng = np.random.default_rng(0)
    g = torch.from_numpy(unit(rng.standard_normal((n, d), dtype=np.float32)))
    q = torch.from_numpy(unit(rng.standard_normal((m, d), dtype=np.float32)))
    ix = ExactIndex(g)
    base, times = peak_reset(), []
    for _ in range(3):
        t0 = time.perf_counter()
        if which == 'bare': s, i = (q @ g.T).topk(k, dim=1)
        else: s, i = ix.search(q, k)
        times.append(time.perf_counter() - t0)
    return dict(seconds=float(np.median(times)), peak_growth_mb=_status('VmHWM') - base, first=np.asarray(i)[:3].tolist())

def part_exact():
    out = {}
    for which in ('bare', 'exact'):
        r = subprocess.run([sys.executable, __file__, '--one', which], capture_output=True, text=True, check=True)
        out[which] = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['bare']['first'] == out['exact']['first'], 'the two searches disagree'
    ratio = out['exact']['seconds'] / out['bare']['seconds']
    print(f"exact search, 1,000 queries x 200,000 x 512: bare q @ g.T + topk {out['bare']['seconds']:.3f} s (memory +{out['bare']['peak_growth_mb']:.0f} MB), "
          f"ExactIndex {out['exact']['seconds']:.3f} s (memory +{out['exact']['peak_growth_mb']:.0f} MB): ratio {ratio:.2f}x")
    return dict(bare=out['bare'], exact=out['exact'], ratio=ratio)

def part_ann(hnsw:bool):
    from building_metric.search import ExactIndex, FaissIndex
    import faiss
    rng = np.random.default_rng(0)
    n, d, m, k = 1_000_000, 128, 1000, 10
    centres = rng.standard_normal((20_000, d), dtype=np.float32)
    def draw(count): return unit(centres[rng.integers(0, len(centres), count)] + 0.5 * rng.standard_normal((count, d), dtype=np.float32)).astype(np.float32)
    g, q = draw(n), draw(m)
    exact = ExactIndex(g)
    t0 = time.perf_counter(); _, want = exact.search(q, k); t_exact = time.perf_counter() - t0
    print(f"exact: {t_exact / m * 1000:.2f} ms per query ({faiss.omp_get_max_threads()} threads)")
    rows = [dict(index='exact', build_s=0.0, ms_per_query=t_exact / m * 1000, recall_at_10=1.0, speedup=1.0)]
    t0 = time.perf_counter(); ivf = FaissIndex.build(g, 'ivf'); b = time.perf_counter() - t0
    for nprobe in sorted({4, 8, 16, 32, 64, ivf.index.nprobe}):   # (the default: ivf.index.nprobe)
        ivf.index.nprobe = nprobe
        t0 = time.perf_counter(); _, got = ivf.search(q, k); t = time.perf_counter() - t0
        rec = float(np.mean([len(set(a) & set(c)) / k for a, c in zip(want, got)]))
        rows.append(dict(index=f'ivf nlist={ivf.index.nlist} nprobe={nprobe}', build_s=b, ms_per_query=t / m * 1000, recall_at_10=rec, speedup=t_exact / t))
        print(rows[-1])
    if hnsw:
        t0 = time.perf_counter(); h = FaissIndex.build(g, 'hnsw'); b = time.perf_counter() - t0
        for ef in (32, 64, 128):
            h.index.hnsw.efSearch = ef
            t0 = time.perf_counter(); _, got = h.search(q, k); t = time.perf_counter() - t0
            rec = float(np.mean([len(set(a) & set(c)) / k for a, c in zip(want, got)]))
            rows.append(dict(index=f'hnsw M=32 ef={ef}', build_s=b, ms_per_query=t / m * 1000, recall_at_10=rec, speedup=t_exact / t))
            print(rows[-1])
    return rows

def part_index(n_images:int):
    from building_metric.data.index import BuildingIndex
    from building_metric.data.synth import write_synthetic
    from building_metric.features.cache import extract_features
    from building_metric.features.extractors import create_extractor
    from building_metric.search import BuildingGallery, SearchModel
    from building_metric.weights import packaged_weights
    tmp = Path(tempfile.mkdtemp())
    write_synthetic(tmp/'photos', 'folders', n_identities=n_images // 8, views=8, size=128, seed=0)
    name = 'efficientnet_lite0' if packaged_weights('efficientnet_lite0') else 'resnet'
    ext = create_extractor(name, tiny=name == 'resnet')
    model = SearchModel([ext], None, name)
    index = BuildingIndex.from_folder(tmp/'photos')
    t0 = time.perf_counter(); extract_features(index, [ext], tmp/'alone.h5', progress=False); t_ext = time.perf_counter() - t0
    t0 = time.perf_counter(); BuildingGallery.build(model, tmp/'photos', tmp/'gallery', progress=False, log=lambda *a: None); t_build = time.perf_counter() - t0
    r = dict(extractor=name, images=len(index), extraction_s=t_ext, build_s=t_build, throughput_ratio=t_ext / t_build)
    print(f"indexing {len(index)} photos with {name}: extraction alone {t_ext:.1f} s, bm-index (extraction, embedding, index, calibration) {t_build:.1f} s: "
          f"throughput {t_ext / t_build:.2f}x of extraction alone")
    return r

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--part', default='all', choices=('exact', 'ann', 'index', 'all'))
    p.add_argument('--hnsw', action='store_true', help='also build an HNSW index of the million embeddings (minutes)')
    p.add_argument('--images', type=int, default=400)
    p.add_argument('--one', help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if a.one: print(json.dumps(exact_one(a.one))); sys.exit()
    res = {}
    if a.part in ('exact', 'all'): res['exact'] = part_exact()
    if a.part in ('ann', 'all'): res['ann'] = part_ann(a.hnsw)
    if a.part in ('index', 'all'): res['index'] = part_index(a.images)
    print(json.dumps(res, indent=1, default=float))
