#!/bin/bash
#SBATCH --job-name=bm-extract
#SBATCH --nodes=1               # several nodes: sbatch --nodes=4 slurm/extract.sh ...
#SBATCH --ntasks-per-node=1     # one torchrun per node; it starts BM_NPROC_PER_NODE processes
#SBATCH --gpus-per-node=1       # and one process per GPU (BM_NPROC_PER_NODE defaults to SLURM_GPUS_ON_NODE)
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%x-%j.out
# bm-extract: the feature cache, its shards extracted in parallel.
# Submit from the repository (or any folder holding slurm/), in the environment that has building_metric:
#   sbatch slurm/extract.sh --config configs/pipeline.yaml [key=value ...]
# The arguments are bm-extract's own (--config files, flags, key=value overrides), as on one machine.
set -euo pipefail
source "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}/slurm/launch.sh"
bm_launch extract "$@"
