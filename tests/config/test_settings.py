"The example configs in configs/ load into the settings of their console scripts."

from pathlib import Path

import pytest
from building_metric.config import (
    HPOConfig,
    MeshTrainConfig,
    PairConfig,
    PipelineConfig,
    SegTrainConfig,
    StagedRunConfig,
    TrainConfig,
    load_config,
)

CONFIGS = Path(__file__).parents[2] / 'configs'


@pytest.mark.parametrize(
    'name,cls,section',
    [
        ('fusion.yaml', TrainConfig, 'train'),
        ('geo_triplet.yaml', TrainConfig, 'train'),
        ('segmentation.yaml', SegTrainConfig, 'segment'),
        ('hpo.yaml', HPOConfig, 'hpo'),
        ('pipeline.yaml', TrainConfig, 'train'),
        ('pipeline.yaml', HPOConfig, 'hpo'),
        ('siamese.yaml', PairConfig, 'pairs'),
        ('mesh.yaml', MeshTrainConfig, 'mesh'),
        ('staged.yaml', StagedRunConfig, 'staged'),
    ],
)
def test_example_config_loads(name, cls, section):
    cfg = load_config(cls, CONFIGS / name, section)
    assert isinstance(cfg, cls) and cls.from_dict(cfg.to_dict()) == cfg


def test_every_example_config_is_used():
    assert {p.name for p in CONFIGS.glob('*.yaml')} == {
        'fusion.yaml',
        'geo_triplet.yaml',
        'segmentation.yaml',
        'hpo.yaml',
        'pipeline.yaml',
        'siamese.yaml',
        'mesh.yaml',
        'staged.yaml',
    }


def test_geo_triplet_keeps_the_original_defaults():
    c = TrainConfig.from_yaml(CONFIGS / 'geo_triplet.yaml')
    assert (c.emb_dim, c.margin, c.lr, c.wd, c.levels, c.ucb_alpha, c.update_freq, c.split) == (
        128,
        1.0,
        1e-4,
        1e-4,
        5,
        2.0,
        100,
        'group',
    )
    assert (c.warmup, c.pct_start) == (3, 0.1)  # 3 of 30 epochs of warm-up


def test_pipeline_example_links_its_steps():
    p = PipelineConfig.load(CONFIGS / 'pipeline.yaml')
    assert p.train.data == p.extract.out == 'runs/experiment/features.h5'
    assert p.eval.checkpoint == 'runs/experiment/train/models/best.pth' and p.eval.data == p.extract.out
    assert p.hpo.train == str(CONFIGS / 'pipeline.yaml') and p.hpo.out == 'runs/experiment/hpo'
    assert (
        p.train.extractor_names == ['clip', 'segformer', 'dpt', 'resnet']
        and p.extract.extractors == 'clip,segformer,dpt,resnet'
    )


def test_staged_example_is_the_documents_recipe():
    c = StagedRunConfig.from_yaml(CONFIGS / 'staged.yaml')
    assert c.phase_list() == ['supcon', 'arcface', 'distill', 'evaluate'] and (
        c.margin,
        c.scale,
        c.use_ema_teacher,
    ) == (28.6, 64.0, True)
