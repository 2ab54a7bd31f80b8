"""The anchor to run beside our own GPU numbers, in the same run: Hugging Face transformers on the same GPU,
fp32 with TF32 off, random weights of a published shape, no mamba_ssm / causal_conv1d kernels (not installed there).

  python3 deploy/gpu-host/hf_anchor.py forward  --arch mamba  --shape 130m --batch 8 --seq-len 2048 [--mambapy]
  python3 deploy/gpu-host/hf_anchor.py generate --arch mamba  --shape 2.8b --batch 1 --new-tokens 64
  python3 deploy/gpu-host/hf_anchor.py forward  --arch mamba2 --shape 130m --batch 4 --seq-len 2048
  taskset -c 0,1 python3 deploy/gpu-host/hf_anchor.py forward --device cpu --arch mamba2 --batch 1 --seq-len 512

--device cpu runs the torch path on the CPU with as many threads as the process may use (pin them with taskset).

Prints one line: tokens/s, ms, peak GiB.
--mambapy needs the `mambapy` package (1.2.0, pure Python) importable there; without it transformers silently keeps
its slow loop over L, so the line then reports the slow path.
Seen on H100s (2026-12-06, runs on two machines; ~20% apart between runs): mamba 130m forward B=8 L=2048 5.5k-7.4k
tok/s (mambapy 24.8k); 2.8b forward B=8 L=2048 1.0k-1.1k tok/s; generate 130m B=1 77 tok/s, B=64 4.4k tok/s;
generate 2.8b B=1 17.1 tok/s (58.6 ms/step); mamba2 130m forward B=4 L=2048 4.2k tok/s, generate B=1 55-68 tok/s.
mambapy training of the 130m shape at B=8 L=2048 ran out of memory on 80 GB.
"""
import argparse, time, torch
from transformers import MambaConfig, MambaForCausalLM, Mamba2Config, Mamba2ForCausalLM

SHAPES = {  # published checkpoints' shapes (state-spaces/mamba-*, state-spaces/mamba2-*)
    "mamba": {"130m": (768, 24), "370m": (1024, 48), "790m": (1536, 48), "1.4b": (2048, 48), "2.8b": (2560, 64)},
    "mamba2": {"130m": (768, 24), "370m": (1024, 48), "780m": (1536, 48), "1.3b": (2048, 48), "2.7b": (2560, 64)},
}

p = argparse.ArgumentParser()
p.add_argument("what", choices=["forward", "generate"])
p.add_argument("--arch", choices=["mamba", "mamba2"], default="mamba")
p.add_argument("--shape", default="130m")
p.add_argument("--batch", type=int, default=1)
p.add_argument("--seq-len", type=int, default=2048)
p.add_argument("--new-tokens", type=int, default=64)
p.add_argument("--iters", type=int, default=3, help="forward: timed runs after the warm-up")
p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
p.add_argument("--mambapy", action="store_true", help="Mamba-1 forward through mamba.py's parallel scan")
a = p.parse_args()
import os
if a.device == "cpu":
    torch.set_num_threads(len(os.sched_getaffinity(0)))
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
d, n = SHAPES[a.arch][a.shape]
if a.arch == "mamba":
    V = 50280
    m = MambaForCausalLM(MambaConfig(vocab_size=V, hidden_size=d, num_hidden_layers=n, state_size=16, expand=2,
                                     conv_kernel=4, use_mambapy=a.mambapy))
else:
    V = 50288
    m = Mamba2ForCausalLM(Mamba2Config(vocab_size=V, hidden_size=d, num_hidden_layers=n, num_heads=2 * d // 64,
                                       head_dim=64, state_size=128, n_groups=1, expand=2, conv_kernel=4, chunk_size=256))
# transformers takes the mamba.py parallel scan only in training mode (dropout is 0 in these models, and no_grad
# below keeps it a pure forward); otherwise its slow path loops over L in Python.
m = m.to(a.device).float().train(a.mambapy)
device_name = torch.cuda.get_device_name() if a.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
name = f"HF {a.arch} {a.shape} {device_name}"


def sync(reset_peak=False):
    if a.device == "cuda":
        torch.cuda.synchronize()
        if reset_peak:
            torch.cuda.reset_peak_memory_stats()


def peak():
    return torch.cuda.max_memory_allocated() / 2**30 if a.device == "cuda" else 0.0


with torch.no_grad():
    if a.what == "forward":
        ids = torch.randint(0, V, (a.batch, a.seq_len), device=a.device)
        m(input_ids=ids, use_cache=False)
        sync(reset_peak=True); t = time.perf_counter()
        for _ in range(a.iters):
            m(input_ids=ids, use_cache=False)
        sync(); dt = (time.perf_counter() - t) / a.iters
        print(f"{name} forward B={a.batch} L={a.seq_len}{' mambapy' if a.mambapy else ''}: {a.batch * a.seq_len / dt:,.0f} "
              f"tokens/s ({dt * 1e3:.1f} ms, peak {peak():.1f} GiB)")
    else:
        ids = torch.randint(0, V, (a.batch, 16), device=a.device)
        m.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False)
        sync(reset_peak=True); t = time.perf_counter()
        m.generate(ids, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False)
        sync(); dt = time.perf_counter() - t
        print(f"{name} greedy generate B={a.batch}: {a.batch * a.new_tokens / dt:,.1f} tokens/s "
              f"({dt / a.new_tokens * 1e3:.2f} ms/step, peak {peak():.1f} GiB)")
