# Sourced by the batch scripts of this folder: `bm_launch COMMAND ARGS` starts `python -m building_metric.cli COMMAND
# ARGS` under torchrun on every node of the allocation, one torchrun per node (started by srun), its processes meeting
# through the c10d rendezvous on the first node. The same command runs on one node or many: sbatch --nodes=N.
# bm's `--name value` flags are handed on as `name=value` (torchrun would take `--m` or `--log` for its own); a value
# of several words is written `name='a b'`.
#
# What it reads (SLURM sets the first three; the others are yours to set, with these defaults):
#   SLURM_NNODES          nodes of the allocation (torchrun --nnodes)
#   SLURM_JOB_NODELIST    their names; the first is the rendezvous host
#   SLURM_JOB_ID          the rendezvous id (torchrun --rdzv_id)
#   BM_NPROC_PER_NODE     processes per node (default: SLURM_GPUS_ON_NODE, else 1)
#   BM_MASTER_PORT        the rendezvous port on the first node (default 29500)
#   BM_MASTER_ADDR        the rendezvous host when scontrol cannot name it (default 127.0.0.1)
#   BM_PYTHON             the environment's python (default: the python on PATH; activate the venv before sbatch)
bm_launch() {
  local command="$1"; shift
  local py="${BM_PYTHON:-$(command -v python)}"
  local nnodes="${SLURM_NNODES:-1}"
  local nproc="${BM_NPROC_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}"
  local head=""
  if command -v scontrol >/dev/null 2>&1 && [ -n "${SLURM_JOB_NODELIST:-}" ]; then
    head="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
  fi
  head="${head:-${BM_MASTER_ADDR:-127.0.0.1}}"
  local launcher=()
  if command -v srun >/dev/null 2>&1 && [ -n "${SLURM_JOB_ID:-}" ]; then
    launcher=(srun --ntasks="$nnodes" --ntasks-per-node=1 --kill-on-bad-exit=1)
  fi
  # torchrun reads abbreviations of its own flags anywhere on the line (--m, --log): bm's --name value go as name=value
  local args=() a
  while [ $# -gt 0 ]; do
    a="$1"; shift
    if [[ "$a" == --* && "$a" != *=* && "$a" != --config && "$a" != --help && $# -gt 0 ]]; then args+=("${a#--}=$1"); shift
    else args+=("$a"); fi
  done
  echo "bm-$command on $nnodes node(s) x $nproc process(es), rendezvous $head:${BM_MASTER_PORT:-29500}" >&2
  "${launcher[@]}" "$py" -m torch.distributed.run --nnodes "$nnodes" --nproc_per_node "$nproc" \
    --rdzv_backend c10d --rdzv_endpoint "$head:${BM_MASTER_PORT:-29500}" --rdzv_id "${SLURM_JOB_ID:-bm}" \
    -m building_metric.cli "$command" "${args[@]}"
}
