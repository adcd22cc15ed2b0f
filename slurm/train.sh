#!/bin/bash
#SBATCH --job-name=bm-train
#SBATCH --nodes=1               # several nodes: sbatch --nodes=4 slurm/train.sh ...
#SBATCH --ntasks-per-node=1     # one torchrun per node; it starts BM_NPROC_PER_NODE processes
#SBATCH --gpus-per-node=1       # and one process per GPU (BM_NPROC_PER_NODE defaults to SLURM_GPUS_ON_NODE)
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%x-%j.out
# bm-train: data-parallel training of a fusion head (one process per GPU).
# Submit from the repository (or any folder holding slurm/), in the environment that has building_metric:
#   sbatch slurm/train.sh --config configs/fusion.yaml --data photos/ --out runs/a [key=value ...]
# The arguments are bm-train's own (--config files, flags, key=value overrides), as on one machine.
set -euo pipefail
source "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}/slurm/launch.sh"
bm_launch train "$@"
