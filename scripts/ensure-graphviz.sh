#!/usr/bin/env bash
# Install Graphviz's `dot` (for `nnsim graph --png/--svg`) with apt when it is missing and apt is
# usable; otherwise warn. Never fails: only the picture rendering needs it, and its test skips.
set -u
command -v dot >/dev/null 2>&1 && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi
if command -v apt-get >/dev/null 2>&1 && [ "$SUDO" != "none" ]; then
    echo "Installing Debian's graphviz (for nnsim graph --png/--svg) ..."
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q graphviz >/dev/null 2>&1; then
        $SUDO apt-get update -q >/dev/null 2>&1
        $SUDO apt-get install -y -q graphviz >/dev/null 2>&1
    fi
fi
command -v dot >/dev/null 2>&1 || echo "Graphviz is not installed: nnsim graph can write --dot only (apt-get install graphviz)." >&2
exit 0
