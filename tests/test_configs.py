"The example configs in configs/ load into the settings of their console scripts."
from pathlib import Path

import pytest
from building_metric.hpo import HPOConfig
from building_metric.segmentation.infer import SegTrainConfig
from building_metric.train import TrainConfig

CONFIGS = Path(__file__).parent.parent/'configs'

@pytest.mark.parametrize('name,cls', [('fusion.yaml', TrainConfig), ('geo_triplet.yaml', TrainConfig),
                                      ('segmentation.yaml', SegTrainConfig), ('hpo.yaml', HPOConfig)])
def test_example_config_loads(name, cls):
    cfg = cls.from_yaml(CONFIGS/name)
    assert cls.from_dict(cfg.to_dict()) == cfg

def test_geo_triplet_keeps_the_original_defaults():
    c = TrainConfig.from_yaml(CONFIGS/'geo_triplet.yaml')
    assert (c.emb_dim, c.margin, c.lr, c.wd, c.levels, c.ucb_alpha, c.update_freq) == (128, 1.0, 1e-4, 1e-4, 5, 2.0, 100)
