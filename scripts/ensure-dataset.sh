#!/usr/bin/env bash
# Make sure Debian's Fashion-MNIST files are installed; install them with apt when we can.
# Usage: scripts/ensure-dataset.sh [--optional]   (--optional: warn instead of failing)
set -u
DIR="${NNSIM_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
optional=false
[ "${1:-}" = "--optional" ] && optional=true

if [ -e "$DIR/train-images-idx3-ubyte.gz" ] || [ -e "$DIR/train-images-idx3-ubyte" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi

if command -v apt-get >/dev/null 2>&1 && [ "$SUDO" != "none" ]; then
    echo "Installing Debian's dataset-fashion-mnist (Fashion-MNIST into $DIR) ..."
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; then
        $SUDO apt-get update -q >/dev/null 2>&1
        $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1
    fi
fi

if [ -e "$DIR/train-images-idx3-ubyte.gz" ] || [ -e "$DIR/train-images-idx3-ubyte" ]; then
    exit 0
fi
echo "Fashion-MNIST is not installed in $DIR and apt could not install it." >&2
echo "Install it with 'sudo apt-get install dataset-fashion-mnist', or set NNSIM_FASHION_MNIST_DIR" >&2
echo "to a folder with the four IDX files (train-images-idx3-ubyte.gz ...)." >&2
$optional && { echo "Tests that need the real dataset will be skipped." >&2; exit 0; }
exit 1
