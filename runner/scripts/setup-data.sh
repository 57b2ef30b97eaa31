#!/usr/bin/env bash
# setup-data.sh: make the datasets findable, idempotently.
#  - Fashion-MNIST: Debian's dataset-fashion-mnist puts the four IDX files in
#    /usr/share/datasets/fashion-mnist, one of the places ddpm/data searches.
#  - MNIST: where the full set cannot be downloaded, a local copy (this project's machines have a
#    10k subset in ../shared/data/mnist-10k) is linked into the data cache,
#    $DDPMLAB_CACHE/data/mnist. With internet, `runner data download mnist` fetches the real one.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${DDPMLAB_CACHE:-$HOME/.cache/ddpmlab}
log() { printf 'setup: %s\n' "$*" >&2; }

if [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
	log "Fashion-MNIST already in /usr/share/datasets/fashion-mnist"
elif command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
	log "installing dataset-fashion-mnist with apt"
	apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
else
	log "Fashion-MNIST not installed: run 'sudo apt-get install dataset-fashion-mnist', or 'runner data download fashion_mnist'"
fi

local_mnist=${DDPMLAB_MNIST_DIR:-$repo/../shared/data/mnist-10k}
if [[ -e "$cache/data/mnist" ]]; then
	log "MNIST already in $cache/data/mnist"
elif [[ -f "$local_mnist/train-images-idx3-ubyte.gz" ]]; then
	mkdir -p "$cache/data"
	ln -sfn "$(cd "$local_mnist" && pwd)" "$cache/data/mnist"
	log "linked the local MNIST subset $local_mnist into $cache/data/mnist"
else
	log "MNIST not found locally: 'runner data download mnist' fetches it (internet needed)"
fi
