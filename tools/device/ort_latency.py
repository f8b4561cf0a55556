"""Interleaved batch-1 latency of face swappers in ONNX Runtime's Python API.

For machines without .NET (the lent GPU hosts, whose CPUs have AVX-512 VNNI): the same method as
`ffc benchmark latency` (InterleavedLatency.cs) — every model warmed up, then rounds of one run of each model,
repeated with a rotating start, thread spinning off; p50/p90 pool every run, the ratio to the first model is the
median of the per-repeat p50 ratios with its range. Optionally ORT's profiler splits each model's time by op type.

usage: python3 ort_latency.py [--threads N] [--rounds R] [--repeats K] [--op-profile] FIRST.onnx OTHER.onnx ...
"""
import argparse, json, os, statistics, tempfile, time
import numpy as np
import onnxruntime as ort


def session(path, threads, profile=False):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "p")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feeds(sess, rng):
    shape = sess.get_inputs()[[i.name for i in sess.get_inputs()].index("target")].shape
    r = shape[3]
    source = rng.random(512, dtype=np.float32) - 0.5
    source /= np.linalg.norm(source)
    return {"target": (rng.random((1, 3, r, r), dtype=np.float32) * 2 - 1), "source": source[None, :]}, r


def percentile(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--op-profile", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    sessions = [session(m, a.threads) for m in a.models]
    inputs = []
    for m, s in zip(a.models, sessions):
        f, r = feeds(s, rng)
        inputs.append(f)
    res = {f["target"].shape[3] for f in inputs}
    if len(res) != 1:
        raise SystemExit(f"error: models take different resolutions {sorted(res)}")
    for s, f in zip(sessions, inputs):
        for _ in range(5):
            s.run(None, f)
    n = len(sessions)
    pooled = [[] for _ in range(n)]
    rep_p50 = [[] for _ in range(n)]
    for rep in range(a.repeats):
        these = [[] for _ in range(n)]
        for _ in range(a.rounds):
            for j in range(n):
                k = (j + rep) % n
                t = time.perf_counter()
                sessions[k].run(None, inputs[k])
                these[k].append((time.perf_counter() - t) * 1000)
        for k in range(n):
            pooled[k] += these[k]
            rep_p50[k].append(percentile(these[k], 50))
    print(f"interleaved batch-1 latency, {res.pop()} px, {a.rounds} rounds x {a.repeats} repeats, threads={a.threads or 'all'}, onnxruntime {ort.__version__}")
    print(f"{'model':40s} {'p50 ms':>8s} {'p90 ms':>8s}  first/this (range)")
    for k, m in enumerate(a.models):
        ratios = [f / t for f, t in zip(rep_p50[0], rep_p50[k])]
        print(f"{os.path.basename(m):40s} {percentile(pooled[k], 50):8.2f} {percentile(pooled[k], 90):8.2f}  "
              f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
    if a.op_profile:
        for m, f in zip(a.models, inputs):
            s = session(m, a.threads, profile=True)
            for _ in range(5):
                s.run(None, f)
            runs = 30
            for _ in range(runs):
                s.run(None, f)
            path = s.end_profiling()
            by_op = {}
            for e in json.load(open(path)):
                if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                    op = e["args"].get("op_name", "?")
                    by_op[op] = by_op.get(op, 0) + e["dur"]
            total = sum(by_op.values())
            print(f"{os.path.basename(m)}: kernel time per op type (incl. 5 warm-up runs, ms/run over {runs + 5})")
            for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])[:10]:
                print(f"  {op:28s} {us / 1000 / (runs + 5):8.3f} {us / total:6.1%}")


if __name__ == "__main__":
    main()
