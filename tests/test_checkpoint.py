"""Saved models outlive the code that saved them: `tests/fixtures/checkpoint_v1` is a `bm-train` checkpoint (a gated,
residual FusionHead on tiny ViT features, 16-d) written by the library before heads recorded their own constructor
arguments, with the embeddings it gave then (`expected.pt`: of 8 fixed feature rows, and of `photo.png` through the
whole search model). It must keep loading and embed identically.

Its tiny ViT had random weights, drawn from seed 3; random draws differ in their last bits between CPUs, so the
fixture keeps those weights (`vit.pth`, the very bits the head was trained on) and the tests load them: the model is
then checked bit for bit by its weights hash on any machine, and embeddings are compared within 1e-5 (float sums
in another order on another CPU), not bit for bit."""

import json, shutil
from pathlib import Path

import pytest
import torch

from building_metric.core import BuildingMetricError
from building_metric.checkpoint import load_checkpoint
from building_metric.data.index import BuildingIndex
from building_metric.metric.heads import FusionHead, load_head
from building_metric.search import SearchModel

FIXTURE = Path(__file__).parent / 'fixtures' / 'checkpoint_v1'
ATOL = 1e-5  # embeddings have norm 1; another CPU's kernels round the last float32 bits otherwise


def fixture_with_its_vit(tmp_path: Path) -> Path:
    "The fixture with its extractor pointed at the ViT weights it was trained with (as a user's local weights file)."
    run = tmp_path / 'run'
    shutil.copytree(FIXTURE, run)
    meta = json.loads((run / 'best.json').read_text())
    meta['extractor_info']['vit']['model_id'] = str(run / 'vit.pth')
    (run / 'best.json').write_text(json.dumps(meta))
    return run / 'best.pth'


def test_old_checkpoint_loads_and_embeds_identically():
    want = torch.load(FIXTURE / 'expected.pt', weights_only=True)
    head, meta = load_head(FIXTURE / 'best.pth')
    assert 'head_args' not in meta and meta['config']['gate'] == 1 and meta['config']['residual'] == 1  # the old format
    assert isinstance(head, FusionHead) and head.gate is not None and head.residual and head.emb_dim == 16
    with torch.no_grad():
        torch.testing.assert_close(head(want['features']), want['embeddings'], rtol=0, atol=ATOL)


def test_old_checkpoint_embeds_photos_identically_through_the_search_model(tmp_path):
    want = torch.load(FIXTURE / 'expected.pt', weights_only=True)
    m = SearchModel.from_run(fixture_with_its_vit(tmp_path))
    assert m.fingerprint == want['fingerprint']  # the same extractor weights and head weights, bit for bit
    shutil.copy(FIXTURE / 'photo.png', tmp_path / 'photo.png')
    cache = m.features(BuildingIndex.from_files(['photo.png'], tmp_path), tmp_path / 'q.h5', workers=0, progress=False)
    torch.testing.assert_close(torch.from_numpy(m.embed_cache(cache)), want['photo_embedding'], rtol=0, atol=ATOL)


def test_a_head_is_rebuilt_from_its_own_arguments_whatever_the_flags_were_called(tmp_path):
    head, meta = load_head(FIXTURE / 'best.pth')
    sd, _ = load_checkpoint(FIXTURE / 'best.pth')
    torch.save(sd, tmp_path / 'best.pth')
    new = dict(meta, head_args=head.init_args, config={'renamed_flags': True})  # no bm-train flag names left
    (tmp_path / 'best.json').write_text(json.dumps(new))
    again, _ = load_head(tmp_path / 'best.pth')
    x = torch.load(FIXTURE / 'expected.pt', weights_only=True)['features']
    with torch.no_grad():
        torch.testing.assert_close(again(x), head(x), rtol=0, atol=0)


def test_other_weights_than_the_models_are_refused(tmp_path):
    best = fixture_with_its_vit(tmp_path)
    sd = torch.load(best.parent / 'vit.pth', weights_only=True)
    k = next(iter(sd))
    sd[k] = sd[k] + 1e-3  # one tensor nudged
    torch.save(sd, best.parent / 'vit.pth')
    with pytest.raises(BuildingMetricError, match="other weights than the model was trained on"):
        SearchModel.from_run(best)
