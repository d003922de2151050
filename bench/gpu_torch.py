"""gpu_torch.py: the PyTorch anchor for bench/gpu.sh, on the same GPU and the same shape.

fp16 rows (15.5M x 128 by default, generated on the device), scores = queries @ rows.T in fp16,
then torch.topk; "masked" sets the scores of filtered rows to -inf before topk (a 1% filter).
Times are medians of CUDA-event timings after a warm-up. Prints one JSON object per line.
Usage: python3 bench/gpu_torch.py [--rows N] [--quick]
"""
import argparse
import json
import sys

try:
    import torch
except ImportError:
    print(json.dumps({"skip": "no torch"}))
    sys.exit(0)


def median_ms(fn, reps):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=15_500_000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"skip": "no CUDA device"}))
        return
    dev = torch.device("cuda")
    print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda,
                      "device": torch.cuda.get_device_name(0)}), flush=True)
    g = torch.Generator(device=dev).manual_seed(1)
    x = torch.empty(a.rows, 128, device=dev, dtype=torch.float16).uniform_(-1, 1, generator=g)
    mask = torch.rand(a.rows, device=dev, generator=g) < 0.01
    cases = [(1, 10, False), (1, 1000, False), (1, 10000, False), (1, 10, True), (16, 10, False),
             (16, 1000, False), (256, 10, False), (1024, 10, False)]
    if not a.quick:
        cases.append((1024, 10000, False))
    for b, k, masked in cases:
        q = torch.randn(b, 128, device=dev, dtype=torch.float16, generator=g)

        def run():
            s = q @ x.T
            if masked:
                s.masked_fill_(~mask, float("-inf"))
            return torch.topk(s, k, dim=1)

        reps = 10 if b <= 16 else 3
        row = {"name": "torch_f16", "batch": b, "k": k, "filter": "1%" if masked else "100%"}
        try:
            row["ms"] = median_ms(run, reps)
        except RuntimeError as e:  # out of memory, or a shape topk refuses: say so, go on
            row["error"] = str(e).splitlines()[0][:200]
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
