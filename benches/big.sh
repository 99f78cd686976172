#!/usr/bin/env bash
# The multi-GiB end-to-end test (ignored in the normal run): a 4.5 GiB file is
# imported, staged by the workers, read with a Range past 4 GiB and downloaded
# whole with its SHA-256 checked. Release build; needs ~14 GiB of free disk.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test api -- --ignored --nocapture big::
