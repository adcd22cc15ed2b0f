__version__ = "0.0.1"

import warnings as _warnings
# fastai compiles a few layers with torch.jit.script at import, which torch now deprecates: a warning
# users cannot act on, which would otherwise precede every console script's output.
_warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)

# One place to start (`import building_metric as bm; bm.BuildingIndex.from_path(...)`): the library's entry points by
# name, each imported from its module on first use (PEP 562), so `import building_metric` stays as light as it was.
PUBLIC = {   # name -> the module that defines it
    'BuildingMetricError': 'core', 'seed_everything': 'core', 'class_colors': 'core',
    'BuildingIndex': 'data.index', 'write_synthetic': 'data.synth',
    'create_extractor': 'features.extractors', 'list_extractors': 'features.extractors',
    'extract_features': 'features.extract', 'FeatureCache': 'features.cache',
    'FusionHead': 'metric.heads', 'ProjectionHead': 'metric.heads', 'Embedder': 'metric.heads',
    'load_head': 'metric.heads', 'save_embedder': 'metric.heads', 'load_embedder': 'metric.heads',
    'create_loss': 'metric.losses', 'list_losses': 'metric.losses',
    'metric_learner': 'metric.learner', 'image_dataloaders': 'metric.learner',
    'staged_training': 'metric.staged', 'staged_run': 'jobs.staged', 'TrainingRun': 'run',
    'retrieval_metrics': 'retrieval.metrics', 'evaluate': 'evaluation.report',
    'evaluate_embedder': 'evaluation.embedders',
    'SearchModel': 'search.model', 'BuildingGallery': 'search.gallery',
    'seg_learner': 'segmentation.learner', 'read_mesh': 'mesh.io', 'write_mesh': 'mesh.io',
    'MeshSegmenter': 'mesh.models',
    'TrainConfig': 'config', 'StagedRunConfig': 'config', 'SegTrainConfig': 'config', 'MeshTrainConfig': 'config',
}
__all__ = sorted(PUBLIC)

def __getattr__(name:str):
    if name in PUBLIC:
        import importlib
        value = getattr(importlib.import_module(f'{__name__}.{PUBLIC[name]}'), name)
        globals()[name] = value   # (once)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

def __dir__() -> list[str]: return sorted(set(globals()) | set(PUBLIC))
