#!/usr/bin/env bash
# Make a fresh machine ready: npm packages, and a Vulkan driver for WebGPU in Node. Machines
# without a GPU get SwiftShader from Debian's chromium package (which the browser tests also use).
# The export tests run the exported models in PyTorch: Debian's python3-torch, used through
# /usr/bin/python3 (about a minute to install on a fresh machine). The Fashion-MNIST loader test
# reads Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, the loader's default).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -e /usr/lib/chromium/vk_swiftshader_icd.json ] && [ -x /usr/bin/chromium ] || need_apt+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need_apt+=(libvulkan1)
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || need_apt+=(python3-torch)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need_apt[*]} (Vulkan loader and SwiftShader for WebGPU without a GPU; PyTorch for the export tests; Fashion-MNIST for its loader test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}; install them (e.g. sudo apt-get install -y ${need_apt[*]}; a GPU's Vulkan driver may stand in for chromium and libvulkan1)." >&2
  fi
fi

# npm packages: install when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  # onnxruntime-node's install script would fetch optional GPU binaries from the internet; its CPU
  # runtime ships inside the package, which is all the tests use.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >&2
fi
