#!/bin/bash
#SBATCH --job-name=bm-seg-train
#SBATCH --nodes=1               # several nodes: sbatch --nodes=4 slurm/seg_train.sh ...
#SBATCH --ntasks-per-node=1     # one torchrun per node; it starts BM_NPROC_PER_NODE processes
#SBATCH --gpus-per-node=1       # and one process per GPU (BM_NPROC_PER_NODE defaults to SLURM_GPUS_ON_NODE)
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%x-%j.out
# bm-seg-train: data-parallel facade segmentation.
# Submit from the repository (or any folder holding slurm/), in the environment that has building_metric:
#   sbatch slurm/seg_train.sh --config configs/segmentation.yaml --data facades/ [key=value ...]
# The arguments are bm-seg-train's own (--config files, flags, key=value overrides), as on one machine.
set -euo pipefail
source "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}/slurm/launch.sh"
bm_launch seg-train "$@"
