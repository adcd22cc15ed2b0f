"Two processes on the CPU (gloo, started by torchrun): sharded extraction, training and its resumption, and evaluation at scale, each against one process (segmentation and Accelerate's launcher: `make test-slow`)."

import json, subprocess

import numpy as np
import pytest
import torch
from building_metric.data.index import BuildingIndex
from building_metric.data.synth import write_synthetic
from building_metric.features.cache import FeatureCache

from building_metric.metric.heads import load_head
from conftest import BIN, ENV, map_at_r_range, pml_map_at_r, run, sharded_gallery

ENV = dict(ENV, OMP_NUM_THREADS='1')


def torchrun(command: str, *args) -> subprocess.CompletedProcess:
    "`python -m building_metric.cli COMMAND ARGS` in two processes on the CPU."
    return subprocess.run(
        [
            str(BIN / 'torchrun'),
            '--standalone',
            '--nproc_per_node=2',
            '-m',
            'building_metric.cli',
            command,
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )


def one_and_two(command: str, common: list, tmp_path) -> tuple[dict, dict]:
    "The answers of `bm-COMMAND` in one process (out=tmp_path/one) and in two (out=tmp_path/two)."
    one = run(f'bm-{command}', *common, f"out={tmp_path / 'one'}")
    two = torchrun(command, *common, f"out={tmp_path / 'two'}")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    return json.loads(one.stdout), json.loads(two.stdout)  # one answer, from process 0


def test_two_process_extraction_equals_one_process(tmp_path):
    write_synthetic(tmp_path / 'geo', 'geo', n_identities=12, views=4, size=48)
    BuildingIndex.from_path(tmp_path / 'geo', progress=False).split(by='group', seed=0).save(tmp_path / 'index.csv')
    common = [
        '--data',
        str(tmp_path / 'index.csv'),
        '--extractors',
        'resnet,vit',
        '--tiny',
        '1',
        '--workers',
        '0',
        '--bs',
        '4',
        '--shard_rows',
        '8',
    ]
    one = run('bm-extract', *common, '--out', tmp_path / 'one.h5')
    assert one.returncode == 0, one.stderr
    two = torchrun('extract', *common, '--out', tmp_path / 'two.h5')
    assert two.returncode == 0, two.stderr
    s1, s2 = json.loads(one.stdout), json.loads(two.stdout)  # one answer, from process 0
    print(f"extraction: {s1['seconds']} s in one process, {s2['seconds']} s in two")
    assert {k: v for k, v in s2.items() if k != 'seconds'} == {k: v for k, v in s1.items() if k != 'seconds'} | {
        'cache': str(tmp_path / 'two.h5')
    }
    assert not (tmp_path / 'two.h5.parts').exists()
    with FeatureCache(tmp_path / 'one.h5') as a, FeatureCache(tmp_path / 'two.h5') as b:
        assert len(a) == len(b) == 48 and a.extractors == b.extractors == ['resnet', 'vit']
        for k in ('paths', 'labels', 'split_of', 'coords'):  # the same rows, in the same order
            assert np.array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k))), k
        assert np.array_equal(a.knn[0], b.knn[0])
        for n in a.extractors:  # 6 shards: 3 from each process
            np.testing.assert_allclose(
                a.features(n).astype(np.float32), b.features(n).astype(np.float32), atol=2e-3, rtol=1e-2
            )


def test_two_process_training_writes_one_run(tmp_path):
    write_synthetic(tmp_path / 'photos', 'folders', n_identities=16, views=8, size=48)
    idx = BuildingIndex.from_path(tmp_path / 'photos', progress=False).split(by='class', seed=0)
    from building_metric.features.cache import extract_features

    cache = extract_features(idx, ['resnet'], tmp_path / 'f.h5', tiny=True, progress=False, num_workers=0)
    common = [
        f'data={cache}',
        'resnet=1',
        'epochs=4',
        'batch=32',
        'sampler=m_per_class',
        'm=4',
        'lr=0.01',
        'eval_every=5',
        'patience=0',
        'log=csv',
    ]  # key=value: torchrun takes abbreviations of its own flags anywhere (--m, --log)
    m1, m2 = one_and_two('train', common, tmp_path)
    assert m2 == {k: v for k, v in json.loads((tmp_path / 'two' / 'metrics.json').read_text()).items() if k != 'best'}
    h1, h2 = (np.loadtxt(tmp_path / r / 'history.csv', delimiter=',', skiprows=1, usecols=1) for r in ('one', 'two'))
    assert len(h1) == len(h2) == 4  # one history, written once
    assert {p.name for p in (tmp_path / 'two' / 'models').iterdir()} >= {'best.pth', 'best.json', 'last.pth'}
    print(
        'train loss per epoch, 1 process:',
        h1.round(3),
        '2 processes:',
        h2.round(3),
        'MAP@R:',
        m1['map_at_r'],
        m2['map_at_r'],
    )
    assert np.allclose(h1, h2, rtol=0.05), (
        h1,
        h2,
    )  # the same global batches (measured: within 2.5%); dropout and per-process batch norm differ
    for d, m in (
        ('one', m1),
        ('two', m2),
    ):  # each reports the MAP@R of its own best weights on the test split (computed here)
        head, _ = load_head(tmp_path / d / 'models' / 'best.pth')
        with FeatureCache(cache) as c, torch.no_grad():
            emb, y = head(torch.from_numpy(c.features('resnet', 'test'))), c.labels[c.rows('test')]
        lo, hi = map_at_r_range(emb, y)  # (the processes' last float bits may order near-tied neighbours otherwise)
        print(d, 'MAP@R', m['map_at_r'], 'within', (lo, hi))
        assert lo - 1e-9 <= pml_map_at_r(emb, y) <= hi + 1e-9 and lo - 1e-9 <= m['map_at_r'] <= hi + 1e-9, (
            d,
            m,
            lo,
            hi,
        )
    more = torchrun('train', *common, f"out={tmp_path / 'two'}", 'epochs=6', 'resume=1')
    assert more.returncode == 0, more.stderr  # resumed in two processes: every one loads last.pth
    h3 = np.loadtxt(tmp_path / 'two' / 'history.csv', delimiter=',', skiprows=1, usecols=(0, 1))
    assert h3[:, 0].tolist() == list(range(6)) and np.allclose(
        h3[:4, 1], h2
    )  # epochs 4 and 5 appended once, the first 4 kept


def test_two_process_evaluation_at_scale_equals_one_process(tmp_path):
    from building_metric.evaluation.report import seen_unseen_split
    from building_metric.features.cache import extract_features
    from building_metric.retrieval.metrics import retrieval_metrics_chunked
    import h5py

    write_synthetic(tmp_path / 'photos', 'folders', n_identities=16, views=8, size=48)
    idx = seen_unseen_split(BuildingIndex.from_path(tmp_path / 'photos', progress=False), seed=0)
    cache = extract_features(idx, ['resnet'], tmp_path / 'f.h5', tiny=True, progress=False, num_workers=0)
    tr = run(
        'bm-train',
        f'data={cache}',
        'resnet=1',
        'epochs=2',
        'batch=32',
        'eval_every=5',
        'patience=0',
        f"out={tmp_path / 'run'}",
    )
    assert tr.returncode == 0, tr.stderr
    common = [
        f"checkpoint={tmp_path / 'run' / 'models' / 'best.pth'}",
        f'data={cache}',
        'chunk=7',
    ]  # blocks of 7 rows: many of them, split unevenly
    full = run('bm-eval', *common[:2], f"out={tmp_path / 'full'}")
    one = run('bm-eval', *common, f"out={tmp_path / 'one'}")
    two = torchrun('eval', *common, f"out={tmp_path / 'two'}")
    for r in (full, one, two):
        assert r.returncode == 0, r.stderr
    mf, m1, m2 = (json.loads(r.stdout) for r in (full, one, two))  # one answer, from process 0
    assert (m1['processes'], m2['processes']) == (1, 2)
    for split, part in (('val', 'seen_buildings_heldout_views'), ('test', 'unseen_buildings')):
        with (
            h5py.File(tmp_path / 'one' / f'embeddings_{split}.h5') as a,
            h5py.File(tmp_path / 'two' / f'embeddings_{split}.h5') as b,
        ):
            assert (
                b['embeddings'].is_virtual and not a['embeddings'].is_virtual
            )  # two parts joined by a virtual dataset
            assert np.array_equal(a['rows'][:], b['rows'][:]) and np.array_equal(a['labels'][:], b['labels'][:])
            # each process embeds its own rows in its own batches, one thread each: equal up to rounding, not bit for bit
            np.testing.assert_allclose(a['embeddings'][:], b['embeddings'][:], atol=1e-6)
            alone = retrieval_metrics_chunked(
                b['embeddings'], b['labels'][:], chunk=7
            )  # the two processes' embeddings, scored in this one
        for (
            k,
            v,
        ) in (
            alone.items()
        ):  # the metrics shared out between processes are exactly those of one process on the same embeddings
            assert abs(m2[part][k] - v) < 1e-9, (part, k, v, m2[part][k])
        n = m1[part]['n_images']
        for k, v in m1[part].items():
            # other batches, other threads: embeddings equal up to rounding, which may order a near-tie the other way (one query's share)
            assert abs(m2[part][k] - v) <= 1 / n + 1e-9 and abs(mf[part][k] - v) <= 1 / n + 1e-9, (
                part,
                k,
                v,
                m2[part][k],
                mf[part][k],
            )
    bad = torchrun('eval', *common[:2], f"out={tmp_path / 'bad'}")
    assert bad.returncode != 0 and 'bm-eval in 2 processes needs --chunk' in bad.stderr


@pytest.mark.slow
def test_accelerate_launch_evaluates_as_torchrun_does(tmp_path):
    "Accelerate's launcher (--multi_gpu: its multi-process mode, gloo here) gives the numbers of one process."
    from building_metric.evaluation.report import seen_unseen_split
    from building_metric.features.cache import extract_features

    write_synthetic(tmp_path / 'photos', 'folders', n_identities=12, views=8, size=48)
    idx = seen_unseen_split(BuildingIndex.from_path(tmp_path / 'photos', progress=False), seed=0)
    cache = extract_features(idx, ['resnet'], tmp_path / 'f.h5', tiny=True, progress=False, num_workers=0)
    assert (
        run(
            'bm-train', f'data={cache}', 'resnet=1', 'epochs=1', 'batch=32', 'patience=0', f"out={tmp_path / 'run'}"
        ).returncode
        == 0
    )
    common = [f"checkpoint={tmp_path / 'run' / 'models' / 'best.pth'}", f'data={cache}', 'chunk=7']
    m2 = json.loads(torchrun('eval', *common, f"out={tmp_path / 'two'}").stdout)
    acc = subprocess.run(
        [
            str(BIN / 'accelerate'),
            'launch',
            '--multi_gpu',
            '--num_processes',
            '2',
            '--num_machines',
            '1',
            '--mixed_precision',
            'no',
            '--dynamo_backend',
            'no',
            '-m',
            'building_metric.cli',
            'eval',
            *common,
            f"out={tmp_path / 'acc'}",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )  # Accelerate's launcher (--multi_gpu: its multi-process mode, gloo here)
    assert acc.returncode == 0, acc.stderr
    assert {k: v for k, v in json.loads(acc.stdout).items() if k != 'checkpoint'} == {
        k: v for k, v in m2.items() if k != 'checkpoint'
    }


@pytest.mark.slow
def test_two_process_segmentation_training(tmp_path):
    write_synthetic(tmp_path / 'facades', 'segmentation', n_identities=20, views=4, size=64)
    common = [
        f"data={tmp_path / 'facades'}",
        'arch=unet_resnet18',
        'tiny=1',
        'pretrained=0',
        'size=64',
        'epochs=3',
        'lr=3e-3',
        'batch=8',
        'augment=0',
        'log=csv',
    ]
    m1, m2 = one_and_two('seg-train', common, tmp_path)
    assert m2.items() <= json.loads((tmp_path / 'two' / 'metrics.json').read_text()).items()
    assert (
        len((tmp_path / 'two' / 'history.csv').read_text().strip().splitlines()) == 1 + 3
    )  # one history, written once
    assert {p.name for p in (tmp_path / 'two' / 'models').iterdir()} >= {'best.pth', 'best.json', 'last.pth'}
    print(
        'test mIoU, 1 process:',
        round(m1['miou'], 3),
        '2 processes:',
        round(m2['miou'], 3),
        'majority class:',
        round(m2['majority_baseline']['miou'], 3),
    )
    for m in (m1, m2):
        assert m['miou'] > 2 * m['majority_baseline']['miou'], m  # both learn (measured: 0.268 and 0.285 against 0.043)
    bad = torchrun('seg-train', *common, 'batch=5', f"out={tmp_path / 'bad'}")
    assert bad.returncode != 0 and '--batch 5 does not split into 2 processes' in bad.stderr


def test_two_process_sharded_search_equals_one_process(tmp_path):
    "`bm-index --shards 3`, then `bm-search` on the shards in two processes: the answers of one process on the whole gallery."
    sharded_gallery(tmp_path)
    assert sorted(p.name for p in (tmp_path / 'g' / 'shards').iterdir()) == [
        'shard-000',
        'shard-001',
        'shard-002',
        'shards.json',
    ]
    common = [f"query={tmp_path / 'new'}", 'workers=0', 'pictures=0', 'k=7']
    one = run('bm-search', f"gallery={tmp_path / 'g'}", *common, f"out={tmp_path / 'one'}")
    two = torchrun('search', f"gallery={tmp_path / 'g' / 'shards'}", *common, f"out={tmp_path / 'two'}")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    a, b = (json.loads((tmp_path / o / 'results.json').read_text()) for o in ('one', 'two'))
    assert a['summary']['queries'] == b['summary']['queries'] == 6
    for qa, qb in zip(a['queries'], b['queries']):
        assert [m['path'] for m in qa['matches']] == [m['path'] for m in qb['matches']]
        np.testing.assert_allclose(
            [m['similarity'] for m in qa['matches']], [m['similarity'] for m in qb['matches']], atol=1e-6
        )
        for key in ('building', 'nearest_building', 'knn_building', 'top1_path'):
            assert qa[key] == qb[key], key
        np.testing.assert_allclose(
            [qa[k] for k in ('confidence', 'lat', 'lon')], [qb[k] for k in ('confidence', 'lat', 'lon')], atol=1e-6
        )
