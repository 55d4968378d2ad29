"""``python -m python_jobs.gpu [--driver]``: can a GPU run the feature kernels here?

Prints one line and exits 0 when the smoke kernel (:func:`python_jobs.gpu.smoke_kernel`) ran
on a device and returned the right values, else prints the reason in one line and exits 1.
``--driver`` only asks the CUDA driver for a device (CuPy not needed): ``make test-gpu`` checks
that before it installs the GPU extra, so a machine without a GPU is told at once.
"""

from __future__ import annotations

import argparse
import sys

from python_jobs import gpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.splitlines()[0])
    parser.add_argument("--driver", action="store_true", help="only ask the CUDA driver for a device")
    args = parser.parse_args(argv)
    if args.driver:
        count = gpu.cuda_device_count()
        if count == 0:
            print("no GPU here: the CUDA driver reports no device", file=sys.stderr)
            return 1
        print(f"the CUDA driver lists {count} device(s)")
        return 0
    reason = gpu.unavailable_reason()
    if reason is not None:
        print(f"no GPU can run a kernel here: {reason}", file=sys.stderr)
        return 1
    print("a CuPy kernel ran on the GPU and returned the right values")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
