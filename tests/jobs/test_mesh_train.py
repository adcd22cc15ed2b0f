"`bm-mesh-train` and `bm-mesh-infer` from the shell: labelled meshes out, bad input in one line (killed and resumed: `tests/run/test_resume.py`)."

import json

import pandas as pd
import pytest

from building_metric.mesh.io import read_mesh
from building_metric.mesh.synth import write_synthetic_meshes

from conftest import one_line_error, run

SMALL = [
    '--dim',
    '16',
    '--heads',
    '2',
    '--blocks',
    '1',
    '--texels',
    '4',
    '--max_faces',
    '32',
    '--clusters',
    '4',
    '--batch',
    '2',
    '--lr',
    '0.003',
    '--patience',
    '0',
]


@pytest.fixture(scope='module')
def meshes(tmp_path_factory):
    return write_synthetic_meshes(tmp_path_factory.mktemp('mesh') / 'meshes', n=(3, 1, 1))


def test_infer_labels_every_face_as_the_trained_model_does(meshes, tmp_path):
    "A short run, then `bm-mesh-infer`: one labelled mesh per input, and the report's accuracy is that of the labels written (its kill-and-resume test is `tests/run/test_resume.py`)."
    full = run('bm-mesh-train', '--data', meshes, *SMALL, '--epochs', '1', '--out', tmp_path / 'full')
    assert full.returncode == 0, full.stderr
    out = tmp_path / 'labelled'
    i = run('bm-mesh-infer', '--checkpoint', tmp_path / 'full', '--meshes', meshes / 'test', '--out', out)
    assert i.returncode == 0, i.stderr
    rep = pd.read_csv(out / 'report.csv')
    src = sorted((meshes / 'test').glob('*.ply'))[0]
    pred, truth = read_mesh(out / src.name).labels, read_mesh(src).labels
    assert len(rep) == 1 and rep.faces[0] == len(truth) and abs(rep.accuracy[0] - (pred == truth).mean()) < 1e-12
    assert json.loads(i.stdout)['meshes'] == 1


def test_bad_input_is_one_line(meshes, tmp_path):
    for args in (
        ['--data', tmp_path / 'none'],
        ['--data', meshes, '--select', 'loss'],
        ['--data', meshes, '--dim', '30'],
        ['--data', meshes, '--freeze_encoder', '1'],
    ):
        r = run('bm-mesh-train', *args, '--out', tmp_path / 'x')
        assert one_line_error(r, 'bm-mesh-train'), r.stderr
    r = run('bm-mesh-infer', '--checkpoint', tmp_path / 'none', '--meshes', meshes / 'test', '--out', tmp_path / 'y')
    assert one_line_error(r, 'bm-mesh-infer'), r.stderr
