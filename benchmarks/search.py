"""Search at scale, three measurements in one run (each against the baseline named in the README):

1. exact search (`ExactIndex`) of 1,000 queries in a 200,000 x 512 gallery against one bare `q @ g.T` + `topk`
   over the same data, with the peak memory of each (measured in a fresh process: resident set growth);
2. approximate search (faiss IVF, and HNSW with --hnsw) on 1,000,000 x 128 clustered embeddings: per-query latency
   and recall@10 against exact search, for several `nprobe`;
3. building a gallery (`BuildingGallery.build`: extraction, embedding, index, calibration) against extraction alone;
4. (--part million) a 1,000,000-photo gallery of 100,000 buildings (clustered 128-d embeddings): `identify` of 10,000
   queries against the index search alone, `add` of 1% more photos against building the gallery, and the search of
   the gallery split in two shards by two processes (torchrun, gloo) against one process on the whole gallery;
5. (--part 10m, 6 minutes of 2 CPU cores and 18 GB) a 10,000,000 x 128 gallery of 100,000 buildings (IVF-PQ, chosen
   by `auto`), its photos building by building (or --shuffled): resident memory of a process that opens it and
   searches, ms per query at batch 1,000, recall@10 against exact search.

Usage: python benchmarks/search.py [--part exact|ann|index|million|10m|all] [--hnsw] [--images 400]
(`all` is parts 1-3.)
"""

import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch


def _status(key: str) -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key + ':'):
            return int(line.split()[1]) / 1024
    return float('nan')


def peak_reset() -> float:
    "Reset the peak resident set (Linux: /proc/self/clear_refs) and return the resident set now, in MB."
    Path('/proc/self/clear_refs').write_text('5')
    return _status('VmRSS')


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_one(which: str, n=200_000, d=512, m=1000, k=10):
    "In a fresh process: time and peak memory growth of one way of searching."
    from building_metric.search import ExactIndex

    rng = np.random.default_rng(0)
    g = torch.from_numpy(unit(rng.standard_normal((n, d), dtype=np.float32)))
    q = torch.from_numpy(unit(rng.standard_normal((m, d), dtype=np.float32)))
    ix = ExactIndex(g)
    base, times = peak_reset(), []
    for _ in range(3):
        t0 = time.perf_counter()
        if which == 'bare':
            s, i = (q @ g.T).topk(k, dim=1)
        else:
            s, i = ix.search(q, k)
        times.append(time.perf_counter() - t0)
    return dict(
        seconds=float(np.median(times)), peak_growth_mb=_status('VmHWM') - base, first=np.asarray(i)[:3].tolist()
    )


def part_exact():
    out = {}
    for which in ('bare', 'exact'):
        r = subprocess.run([sys.executable, __file__, '--one', which], capture_output=True, text=True, check=True)
        out[which] = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['bare']['first'] == out['exact']['first'], 'the two searches disagree'
    ratio = out['exact']['seconds'] / out['bare']['seconds']
    print(
        f"exact search, 1,000 queries x 200,000 x 512: bare q @ g.T + topk {out['bare']['seconds']:.3f} s (memory +{out['bare']['peak_growth_mb']:.0f} MB), "
        f"ExactIndex {out['exact']['seconds']:.3f} s (memory +{out['exact']['peak_growth_mb']:.0f} MB): ratio {ratio:.2f}x"
    )
    return dict(bare=out['bare'], exact=out['exact'], ratio=ratio)


def part_ann(hnsw: bool):
    from building_metric.search import ExactIndex, FaissIndex
    import faiss

    rng = np.random.default_rng(0)
    n, d, m, k = 1_000_000, 128, 1000, 10
    centres = rng.standard_normal((20_000, d), dtype=np.float32)

    def draw(count):
        return unit(
            centres[rng.integers(0, len(centres), count)] + 0.5 * rng.standard_normal((count, d), dtype=np.float32)
        ).astype(np.float32)

    g, q = draw(n), draw(m)
    exact = ExactIndex(g)
    t0 = time.perf_counter()
    _, want = exact.search(q, k)
    t_exact = time.perf_counter() - t0
    print(f"exact: {t_exact / m * 1000:.2f} ms per query ({faiss.omp_get_max_threads()} threads)")
    rows = [dict(index='exact', build_s=0.0, ms_per_query=t_exact / m * 1000, recall_at_10=1.0, speedup=1.0)]
    t0 = time.perf_counter()
    ivf = FaissIndex.build(g, 'ivf')
    b = time.perf_counter() - t0
    for nprobe in sorted({4, 8, 16, 32, 64, ivf.index.nprobe}):  # (the default: ivf.index.nprobe)
        ivf.index.nprobe = nprobe
        t0 = time.perf_counter()
        _, got = ivf.search(q, k)
        t = time.perf_counter() - t0
        rec = float(np.mean([len(set(a) & set(c)) / k for a, c in zip(want, got)]))
        rows.append(
            dict(
                index=f'ivf nlist={ivf.index.nlist} nprobe={nprobe}',
                build_s=b,
                ms_per_query=t / m * 1000,
                recall_at_10=rec,
                speedup=t_exact / t,
            )
        )
        print(rows[-1])
    if hnsw:
        t0 = time.perf_counter()
        h = FaissIndex.build(g, 'hnsw')
        b = time.perf_counter() - t0
        for ef in (32, 64, 128):
            h.index.hnsw.efSearch = ef
            t0 = time.perf_counter()
            _, got = h.search(q, k)
            t = time.perf_counter() - t0
            rec = float(np.mean([len(set(a) & set(c)) / k for a, c in zip(want, got)]))
            rows.append(
                dict(
                    index=f'hnsw M=32 ef={ef}',
                    build_s=b,
                    ms_per_query=t / m * 1000,
                    recall_at_10=rec,
                    speedup=t_exact / t,
                )
            )
            print(rows[-1])
    return rows


def part_index(n_images: int):
    from building_metric.data.index import BuildingIndex
    from building_metric.data.synth import write_synthetic
    from building_metric.features.cache import extract_features
    from building_metric.features.extractors import create_extractor
    from building_metric.search import BuildingGallery, SearchModel
    from building_metric.weights import packaged_weights

    tmp = Path(tempfile.mkdtemp())
    write_synthetic(tmp / 'photos', 'folders', n_identities=n_images // 8, views=8, size=128, seed=0)
    name = 'efficientnet_lite0' if packaged_weights('efficientnet_lite0') else 'resnet'
    ext = create_extractor(name, tiny=name == 'resnet')
    model = SearchModel([ext], None, name)
    index = BuildingIndex.from_folder(tmp / 'photos')
    t0 = time.perf_counter()
    extract_features(index, [ext], tmp / 'alone.h5', progress=False)
    t_ext = time.perf_counter() - t0
    t0 = time.perf_counter()
    BuildingGallery.build(model, tmp / 'photos', tmp / 'gallery', progress=False, log=lambda *a: None)
    t_build = time.perf_counter() - t0
    r = dict(extractor=name, images=len(index), extraction_s=t_ext, build_s=t_build, throughput_ratio=t_ext / t_build)
    print(
        f"indexing {len(index)} photos with {name}: extraction alone {t_ext:.1f} s, bm-index (extraction, embedding, index, calibration) {t_build:.1f} s: "
        f"throughput {t_ext / t_build:.2f}x of extraction alone"
    )
    return r


def clustered(n: int, n_buildings: int, d: int = 128, seed: int = 0, block: int = 1_000_000, by_building: bool = False):
    "Embeddings of `n` photos of `n_buildings` buildings (about n / n_buildings views each) and their buildings; in random order, or building by building (as a folder per building is indexed)."
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_buildings, d), dtype=np.float32)
    lab = rng.integers(0, n_buildings, n)
    if by_building:
        lab = np.sort(lab)
    x = np.empty((n, d), np.float32)
    for a in range(0, n, block):
        b = lab[a : a + block]
        x[a : a + len(b)] = unit(centres[b] + 0.5 * rng.standard_normal((len(b), d), dtype=np.float32))
    return x, lab, centres


def views(centres, lab, seed: int):
    rng = np.random.default_rng(seed)
    return unit(centres[lab] + 0.5 * rng.standard_normal((len(lab), centres.shape[1]), dtype=np.float32)).astype(
        np.float32
    )


def timed(f):
    t0 = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t0


def part_million(n=1_000_000, n_buildings=100_000, m=10_000, k=10):
    from building_metric.search import BuildingGallery, split_gallery

    tmp = Path(tempfile.mkdtemp())
    x, lab, centres = clustered(n, n_buildings)
    names = np.char.add('b', lab.astype(str))
    g, t_build = timed(lambda: BuildingGallery.from_embeddings(x, tmp / 'g', labels=names, log=print))
    q = views(centres, np.random.default_rng(1).integers(0, n_buildings, m), 1)
    g.index.search(q[:100], k)  # (warm)
    _, t_search = timed(lambda: g.index.search(q, k))
    t, t_identify = timed(lambda: g.identify(q, k=k))
    r = dict(
        photos=n,
        buildings=n_buildings,
        kind=g.info['kind'],
        build_s=t_build,
        search_s=t_search,
        identify_s=t_identify,
        identify_over_search=t_identify / t_search,
        identified=float((t.building == np.char.add('b', (np.argmax(q @ centres.T, 1)).astype(str))).mean()),
    )
    print(
        f"{n:,} photos of {n_buildings:,} buildings ({r['kind']}): built in {t_build:.1f} s; {m:,} queries: index search "
        f"{t_search:.2f} s, identify {t_identify:.2f} s ({r['identify_over_search']:.2f}x the search)"
    )
    extra = n // 100
    lab2 = np.random.default_rng(2).integers(0, n_buildings + 1000, extra)  # (new buildings among them)
    centres2 = np.concatenate(
        [centres, np.random.default_rng(3).standard_normal((1000, centres.shape[1]), dtype=np.float32)]
    )
    _, t_add = timed(
        lambda: g.add_embeddings(views(centres2, lab2, 4), labels=np.char.add('b', lab2.astype(str)), log=None)
    )
    r.update(add_photos=extra, add_s=t_add, add_over_build=t_add / t_build, parts=len(g.info['parts']))
    print(
        f"add {extra:,} photos (1%): {t_add:.1f} s, {t_add / t_build:.3f}x the build; the gallery holds {len(g):,} in {r['parts']} parts"
    )
    split_gallery(g, tmp / 'shards', 2)
    np.save(tmp / 'q.npy', q)
    _, want = g.index.search(q, k)
    p = subprocess.run(
        [
            str(Path(sys.executable).with_name('torchrun')),
            '--standalone',
            '--nproc_per_node=2',
            __file__,
            '--shards',
            str(tmp / 'shards'),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
    )
    if p.returncode:
        raise SystemExit(p.stderr[-3000:])
    two = json.loads(p.stdout.strip().splitlines()[-1])
    got = np.load(tmp / 'shards_idx.npy')
    one_thread = subprocess.run(
        [sys.executable, __file__, '--whole', str(tmp / 'g')],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        check=True,
    )
    one = json.loads(one_thread.stdout.strip().splitlines()[-1])
    whole, sample = (
        np.load(tmp / 'whole_idx.npy'),
        500,
    )  # recall of both against exact search, on a sample of the queries
    want = (torch.from_numpy(q[:sample]) @ torch.from_numpy(np.asarray(g.emb)).T).topk(k, dim=1).indices.numpy()
    rec = lambda got: float(np.mean([len(set(a) & set(b)) / k for a, b in zip(want, got[:sample])]))
    r.update(
        sharded_search_s=two['seconds'],
        one_process_one_thread_s=one['seconds'],
        sharded_recall_at_10=rec(got),
        whole_recall_at_10=rec(whole),
        first_match_agrees=float((got[:, 0] == whole[:, 0]).mean()),
    )
    print(
        f"{m:,} queries, one thread per process: two processes on two shards {two['seconds']:.2f} s, one process on the "
        f"whole gallery {one['seconds']:.2f} s; recall@10 against exact search {r['sharded_recall_at_10']:.3f} (shards) "
        f"and {r['whole_recall_at_10']:.3f} (whole; each shard's IVF lists are trained on its own photos), the same "
        f"first match for {r['first_match_agrees']:.1%} of the queries"
    )
    shutil.rmtree(tmp)
    return r


def shard_worker(folder: str, k: int = 10):
    "Under torchrun: search the sharded gallery's queries (q.npy beside it) and time it; process 0 prints and saves."
    from building_metric.search import ShardedGallery
    from building_metric.core import barrier, rank_world

    g, q = ShardedGallery(folder), np.load(Path(folder).parent / 'q.npy')
    g.index.search(q[:100], k)
    barrier()
    (_, idx), t = timed(lambda: g.index.search(q, k))
    if rank_world()[0] == 0:
        np.save(Path(folder).parent / 'shards_idx.npy', idx)
        print(json.dumps(dict(seconds=t)))


def whole_worker(folder: str, k: int = 10):
    from building_metric.search import BuildingGallery

    g, q = BuildingGallery(folder), np.load(Path(folder).parent / 'q.npy')
    g.index.search(q[:100], k)
    (_, idx), t = timed(lambda: g.index.search(q, k))
    np.save(Path(folder).parent / 'whole_idx.npy', idx)
    print(json.dumps(dict(seconds=t)))


def open_worker(folder: str, k: int = 10):
    "In a fresh process: resident memory of opening the gallery and searching 1,000 queries (q.npy beside it)."
    from building_metric.search import BuildingGallery

    base = _status('VmRSS')
    g = BuildingGallery(folder)
    q = np.load(Path(folder).parent / 'q.npy')
    opened = _status('VmRSS')
    (_, idx), t_first = timed(lambda: g.index.search(q, k))  # the first batch reads the file from disk
    (_, idx), t = timed(lambda: g.index.search(q, k))  # then from the system's cache, as a serving process does
    np.save(Path(folder).parent / 'got.npy', idx)
    print(
        json.dumps(
            dict(
                python_mb=base,
                opened_mb=opened,
                after_search_mb=_status('VmRSS'),
                peak_mb=_status('VmHWM'),
                own_mb=_status('RssAnon'),
                mapped_file_mb=_status('RssFile'),
                ms_per_query=t / len(q) * 1000,
                ms_per_query_first_batch=t_first / len(q) * 1000,
            )
        )
    )


def part_10m(n=10_000_000, n_buildings=100_000, m=1000, k=10, exact_sample=200, shuffled: bool = False):
    from building_metric.search import BuildingGallery

    tmp = Path(tempfile.mkdtemp())
    x, lab, centres = clustered(n, n_buildings, by_building=not shuffled)
    g, t_build = timed(
        lambda: BuildingGallery.from_embeddings(x, tmp / 'g', labels=np.char.add('b', lab.astype(str)), log=print)
    )
    kind, recall_built = g.info['kind'], g.info.get('recall_at_10')
    del g
    q = views(centres, np.random.default_rng(1).integers(0, n_buildings, m), 1)
    np.save(tmp / 'q.npy', q)
    p = subprocess.run([sys.executable, __file__, '--open', str(tmp / 'g')], capture_output=True, text=True, check=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    got = np.load(tmp / 'got.npy')[:exact_sample]
    want = (torch.from_numpy(q[:exact_sample]) @ torch.from_numpy(x).T).topk(k, dim=1).indices.numpy()
    rec = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(want, got)]))
    r.update(
        photos=n,
        order='random' if shuffled else 'building by building',
        kind=kind,
        build_s=t_build,
        recall_at_10=rec,
        recall_at_10_when_built=recall_built,
    )
    print(
        f"{n:,} x 128, photos {'in random order' if shuffled else 'building by building'} ({kind}, built in {t_build / 60:.1f} min): a process that opens it holds {r['opened_mb']:.0f} MB "
        f"(Python and libraries {r['python_mb']:.0f} MB); after searching, {r['after_search_mb']:.0f} MB resident, of "
        f"which {r['own_mb']:.0f} MB its own and {r['mapped_file_mb']:.0f} MB mapped pages of the embeddings file "
        "and libraries; "
        f"{r['ms_per_query']:.2f} ms per query at batch {m:,} ({r['ms_per_query_first_batch']:.2f} ms in the first batch, "
        f"which reads the embeddings file from disk); recall@10 {rec:.3f} against exact search ({exact_sample} queries)"
    )
    shutil.rmtree(tmp)
    return r


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--part', default='all', choices=('exact', 'ann', 'index', 'million', '10m', 'all'))
    p.add_argument('--hnsw', action='store_true', help='also build an HNSW index of the million embeddings (minutes)')
    p.add_argument('--images', type=int, default=400)
    p.add_argument(
        '--shuffled', action='store_true', help='--part 10m: photos in random order, not building by building'
    )
    p.add_argument('--one', help=argparse.SUPPRESS)
    for w in ('--shards', '--whole', '--open'):
        p.add_argument(w, help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if a.one:
        print(json.dumps(exact_one(a.one)))
        sys.exit()
    if a.shards:
        shard_worker(a.shards)
        sys.exit()
    if a.whole:
        whole_worker(a.whole)
        sys.exit()
    if getattr(a, 'open'):
        open_worker(getattr(a, 'open'))
        sys.exit()
    res = {}
    if a.part in ('exact', 'all'):
        res['exact'] = part_exact()
    if a.part in ('ann', 'all'):
        res['ann'] = part_ann(a.hnsw)
    if a.part in ('index', 'all'):
        res['index'] = part_index(a.images)
    if a.part == 'million':
        res['million'] = part_million()
    if a.part == '10m':
        res['10m'] = part_10m(shuffled=a.shuffled)
    print(json.dumps(res, indent=1, default=float))
