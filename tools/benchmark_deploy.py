"""Deployment benchmark: exported graphs vs the eager model vs a bare ResNet, and the service.

    python tools/benchmark_deploy.py                      # paper-size ALA-Net + global, 512 px
    python tools/benchmark_deploy.py --quick              # demo-size configs, a few repeats

Exported: ALA-Net (``configs/ALA-Net/paper.yaml``) and the global baseline
(``configs/Global/R50-ordinal.yaml``), batch 1 on CPU, each as the eager model, its TorchScript
trace and its ONNX graph in ONNX Runtime, interleaved with a bare ResNet forward on the tensor
the model's backbone reads; the ratios are to that ResNet (ALA-Net's stretch target is 1.0x).
Service: ``boneage-serve``'s app on a loopback port with the R18 demo models, ``--requests``
uploads of a 512-px PNG at 1 and 4 concurrent clients: requests/s, p50 and p95 latency.
Random-init weights throughout (speed does not depend on them). Writes ``--output`` (json) and
prints the markdown tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="demo-size configs, 2 repeats (smoke)")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--budget-s", type=float, default=60.0)
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--threads", type=int, help="torch CPU threads [torch's default]")
    p.add_argument("--output", default="outputs/benchmark/deploy.json")
    args = p.parse_args(argv)

    import torch

    from boneage_d2.benchmark.deploy import bench_exported, bench_service, deploy_markdown
    from boneage_d2.benchmark.timing import machine_info
    from boneage_d2.io.atomic import atomic_write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    demo = {n: REPO / f"configs/{d}/R18-phantom-demo.yaml" for n, d in
            (("alanet", "ALA-Net"), ("global", "Global"))}  # fmt: skip
    exported_configs = (
        list(demo.values())
        if args.quick
        else [REPO / "configs/ALA-Net/paper.yaml", REPO / "configs/Global/R50-ordinal.yaml"]
    )
    repeats = 2 if args.quick else args.repeats
    requests = 4 if args.quick else args.requests
    exported = [bench_exported(c, 1, repeats, args.budget_s) for c in exported_configs]
    service = bench_service(demo, requests)
    machine = machine_info(["cpu"])
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, {"machine": machine, "exported": exported, "service": service}, indent=1)
    print(deploy_markdown(exported, service, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
