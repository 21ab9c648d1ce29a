#!/usr/bin/env bash
# Murmur against PyTorch (CPU, from PyPI) on the same work, in ONE run, runs interleaved:
#   1. training: `murmur bench train --preset small --batch-size 12 --threads 2` against the same
#      GPT-2 style model in PyTorch (forward + backward + AdamW, same batch, context, threads);
#   2. one DeMo step (prepare + apply, GPT-2-small block + embeddings, topk 32, chunk 64):
#      `murmur bench demo` against the reference demo.py (bloc97/DeMo, blob 0691469c) run with a real
#      torch.distributed gloo group of one process.
# Prints every run, the medians and the ratios. Speeds are only compared within this one run.
#
#   scripts/compare-pytorch.sh                 # both comparisons, 3 runs each
#   RUNS=5 scripts/compare-pytorch.sh train    # only training, 5 runs each
#
# Environment:
#   MURMUR_BIN       murmur binary (default: build .build/release/murmur if missing)
#   TORCH_VENV       venv with torch (default: $HOME/.cache/murmur/venv-torch; made when missing,
#                    `pip install torch numpy einops` from PyPI)
#   DEMO_PY          path to the reference demo.py (default: $HOME/.cache/murmur/demo.py, downloaded
#                    from GitHub at commit 0e48145 when missing and reachable; the git blob hash is
#                    checked). Without it the DeMo comparison uses the re-statement in this script
#                    (same tensor operations, written from golden/demo/DEMO_SPEC.md) and says so.
#   THREADS          threads for both sides (default 2)
#   RUNS             runs per side (default 3)
# OPENBLAS_* variables are removed from the environment: the point is the speed a user gets.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
THREADS="${THREADS:-2}"
RUNS="${RUNS:-3}"
VENV="${TORCH_VENV:-$HOME/.cache/murmur/venv-torch}"
DEMO_PY="${DEMO_PY:-$HOME/.cache/murmur/demo.py}"
DEMO_COMMIT=0e48145d702b25f83055e11d9585a9c11bcfe154
DEMO_BLOB=0691469c29aefc2e8acb9cfdb41518836477c6af

for v in $(env | sed -n 's/^\(OPENBLAS_[A-Z_]*\)=.*/\1/p'); do
  echo "compare: unsetting $v (measuring what a user gets)"; unset "$v"
done
unset MURMUR_BLAS_CORE MURMUR_BLAS_REEXEC

if [ -z "${MURMUR_BIN:-}" ]; then
  MURMUR_BIN=.build/release/murmur
  [ -x "$MURMUR_BIN" ] || swift build -c release --product murmur
fi
[ -x "$MURMUR_BIN" ] || { echo "compare: no murmur binary at $MURMUR_BIN" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import torch, einops, numpy' 2>/dev/null; then
  echo "compare: making $VENV (pip install torch numpy einops from PyPI; large download)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch numpy einops
fi
PY="$VENV/bin/python"

work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------------------------------------
# PyTorch twin of `murmur bench train`: same config (GPTConfig.small: 4 layers, 4 heads, 128
# channels, context 64, 256 byte tokens), tied LM head, GELU tanh form, LayerNorm eps 1e-5,
# AdamW(beta 0.9/0.95, eps 1e-8, wd 0.1, lr 1e-4), 3 warm-up + 40 timed steps on a seeded random walk.
cat > "$work/torch_gpt.py" <<'PY'
import math, sys, time, torch, torch.nn as nn, torch.nn.functional as F
threads, batch, steps, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
V, L, H, C, T = 256, 4, 4, 128, 64

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C); self.c_attn = nn.Linear(C, 3 * C); self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C); self.c_fc = nn.Linear(C, 4 * C); self.mlp_proj = nn.Linear(4 * C, C)
    def forward(self, x):
        B, T_, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T_, H, C // H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(B, T_, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C); self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList(Block() for _ in range(L)); self.ln_f = nn.LayerNorm(C)
        for n, p in self.named_parameters():
            if n.endswith("weight") and p.dim() == 2:
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * L) if "proj" in n else 0.02)
            elif n.endswith("bias"):
                nn.init.zeros_(p)
    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h: x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))

model = GPT()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
g = torch.Generator().manual_seed(1234)
walk = torch.cumsum(torch.randint(-3, 4, (batch * T + 1,), generator=g), 0) % 95 + 32
x, y = walk[:-1].view(batch, T).clone(), walk[1:].view(batch, T).clone()
total = 0.0
for s in range(warmup + steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = model(x, y)
    loss.backward()
    opt.step()
    if s >= warmup: total += time.perf_counter() - t0
print(f"torch {torch.__version__}: {batch * T * steps / total:.0f} tokens/s (loss {loss.item():.3f}, {threads} threads)")
PY

# ---------------------------------------------------------------------------------------------
# One DeMo step of the reference on the tensors of `murmur bench demo` (DeMoBench.gpt2SmallLayout).
cat > "$work/torch_demo.py" <<'PY'
import os, sys, time, statistics, importlib.util, torch, torch.distributed as dist
threads, reps, demo_py = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
shapes = [(50304, 768), (1024, 768), (768,), (768,), (768, 2304), (2304,), (768, 768), (768,),
          (768,), (768,), (768, 3072), (3072,), (3072, 768), (768,), (768,), (768,)]
os.environ.setdefault("MASTER_ADDR", "127.0.0.1"); os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
dist.init_process_group("gloo", rank=0, world_size=1)
if os.path.exists(demo_py):
    spec = importlib.util.spec_from_file_location("demo", demo_py); demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo); DeMo, which = demo.DeMo, "reference demo.py"
else:
    # Re-statement of the reference step (golden/demo/DEMO_SPEC.md §2-§7) with the same tensor
    # operations: einsum DCT with dense bases, topk on |E|, gather, scatter_reduce mean, einsum
    # IDCT, all_gather, sign, SGD.
    import math
    def chunk(n, t):
        if n <= t: return n
        return max(d for d in range(1, t + 1) if n % d == 0)
    def basis(c):
        k = torch.arange(c, dtype=torch.float64)[:, None]; j = torch.arange(c, dtype=torch.float64)[None, :]
        m = torch.cos(math.pi * (2 * j + 1) * k / (2 * c)) * math.sqrt(2 / c); m[0] /= math.sqrt(2)
        return m.float()  # rows = frequencies (C); f = C^T, b = C
    class DeMo(torch.optim.SGD):
        def __init__(self, params, compression_decay=0.999, compression_topk=32, compression_chunk=64, lr=1e-3):
            super().__init__(params, lr=lr, foreach=False)
            self.beta, self.K, self.T = compression_decay, compression_topk, compression_chunk
            self.delta = {p: torch.zeros_like(p) for g in self.param_groups for p in g["params"]}
            self.n = {s: chunk(s, self.T) for g in self.param_groups for p in g["params"] for s in p.shape}
            self.f = {c: basis(c).t().contiguous() for c in set(self.n.values())}
            self.b = {c: basis(c) for c in set(self.n.values())}
        def enc(self, x):
            if x.dim() > 1:
                n1, n2 = self.n[x.shape[0]], self.n[x.shape[1]]
                x = x.reshape(x.shape[0] // n1, n1, x.shape[1] // n2, n2)
                return torch.einsum("...ijkl, jb, ld -> ...ikbd", x, self.f[n1], self.f[n2])
            return torch.einsum("...ij, jb -> ...ib", x.reshape(-1, self.n[x.shape[0]]), self.f[self.n[x.shape[0]]])
        def dec(self, e):
            if e.dim() > 2:
                Y, X, n1, n2 = e.shape
                return torch.einsum("...ijkl, kb, ld -> ...ibjd", e, self.b[n1], self.b[n2]).reshape(Y * n1, X * n2)
            return torch.einsum("...ij, jb -> ...ib", e, self.b[e.shape[1]]).reshape(-1)
        def scatter(self, p, idx, val, xshape):
            x = torch.zeros(xshape, dtype=p.dtype)
            if len(xshape) > 2: x = x.reshape(xshape[0], xshape[1], -1)
            x.scatter_reduce_(-1, idx, val, reduce="mean", include_self=False)
            return x.reshape(xshape)
        @torch.no_grad()
        def step(self):
            for g in self.param_groups:
                lr = g["lr"]
                for p in g["params"]:
                    d = self.delta[p]; d.mul_(self.beta); d.add_(p.grad, alpha=lr)
                    e = self.enc(d); xshape = e.shape
                    flat = e.reshape(xshape[0], xshape[1], -1) if e.dim() > 2 else e
                    k = min(max(self.K, 1), flat.shape[-1])
                    idx = torch.topk(flat.abs(), k=k, dim=-1, largest=True, sorted=False).indices
                    val = torch.gather(flat, -1, idx)
                    d.sub_(self.dec(self.scatter(p, idx, val, xshape)))
                    il = [torch.zeros_like(idx)]; vl = [torch.zeros_like(val)]
                    dist.all_gather(il, idx); dist.all_gather(vl, val)
                    p.grad.copy_(self.dec(self.scatter(p, torch.cat(il, -1), torch.cat(vl, -1), xshape))); p.grad.sign_()
            return super().step()
    which = "re-statement of demo.py (no reference file)"
gen = torch.Generator().manual_seed(2024)
params = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.02) for s in shapes]
for p in params: p.grad = torch.randn(p.shape, generator=gen) * 0.01
opt = DeMo(params, compression_decay=0.999, compression_topk=32, compression_chunk=64, lr=4e-4)
times = []
for _ in range(reps):
    t0 = time.perf_counter(); opt.step(); times.append(time.perf_counter() - t0)
n = sum(p.numel() for p in params)
print(f"torch {torch.__version__} {which}: step best {min(times)*1e3:.1f} ms, median {statistics.median(times)*1e3:.1f} ms ({n} elements, {threads} threads)")
dist.destroy_process_group()
PY

if [ ! -f "$DEMO_PY" ]; then
  mkdir -p "$(dirname "$DEMO_PY")"
  if curl -fsSL -m 30 -o "$DEMO_PY.tmp" "https://raw.githubusercontent.com/bloc97/DeMo/$DEMO_COMMIT/demo.py" 2>/dev/null; then
    mv "$DEMO_PY.tmp" "$DEMO_PY"
  else
    rm -f "$DEMO_PY.tmp"; echo "compare: cannot download demo.py; the DeMo comparison uses the re-statement"
  fi
fi
if [ -f "$DEMO_PY" ] && command -v git >/dev/null && [ "$(git hash-object "$DEMO_PY")" != "$DEMO_BLOB" ]; then
  echo "compare: $DEMO_PY is not blob $DEMO_BLOB of bloc97/DeMo; using the re-statement instead"; DEMO_PY=/nonexistent
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "compare: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), threads $THREADS, $RUNS runs each, interleaved"

if [ "$what" = all ] || [ "$what" = train ]; then
  : > "$work/m.txt"; : > "$work/t.txt"
  for r in $(seq "$RUNS"); do
    out="$("$MURMUR_BIN" bench train --preset small --batch-size 12 --threads "$THREADS" --repeats 1)"
    if [ "$r" = 1 ]; then echo "$out" | grep '^BLAS:' || true; fi
    m="$(echo "$out" | sed -n 's/.*best \([0-9]*\) tokens\/s.*/\1/p')"
    echo "  run $r murmur: $m tokens/s   ($(echo "$out" | grep '^run' | sed 's/^run 1: [0-9]* tokens\/s //'))"
    echo "$m" >> "$work/m.txt"
    out="$("$PY" "$work/torch_gpt.py" "$THREADS" 12 40 3)"
    t="$(echo "$out" | sed -n 's/.*: \([0-9]*\) tokens\/s.*/\1/p')"
    echo "  run $r $out"
    echo "$t" >> "$work/t.txt"
  done
  mm="$(median < "$work/m.txt")"; tm="$(median < "$work/t.txt")"
  echo "train small, batch 12 x 64, $THREADS threads: murmur median $mm tokens/s, pytorch median $tm tokens/s: $(awk -v a="$mm" -v b="$tm" 'BEGIN{printf "%.2f", a/b}')x PyTorch"
fi

if [ "$what" = all ] || [ "$what" = demo ]; then
  : > "$work/m.txt"; : > "$work/t.txt"
  for r in $(seq "$RUNS"); do
    out="$("$MURMUR_BIN" bench demo)"
    prep="$(echo "$out" | sed -n 's/^prepare: best \([0-9.]*\) ms.*median \([0-9.]*\) ms.*/\2/p')"
    app="$(echo "$out" | sed -n 's/^apply (1 peer): best \([0-9.]*\) ms.*median \([0-9.]*\) ms.*/\2/p')"
    m="$(awk -v a="$prep" -v b="$app" 'BEGIN{printf "%.1f", a+b}')"
    echo "  run $r murmur: prepare median $prep ms + apply (1 peer) median $app ms = $m ms"
    echo "$m" >> "$work/m.txt"
    out="$("$PY" "$work/torch_demo.py" "$THREADS" 3 "$DEMO_PY" 2>&1 | grep 'step best')"
    t="$(echo "$out" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')"
    echo "  run $r $out"
    echo "$t" >> "$work/t.txt"
  done
  mm="$(median < "$work/m.txt")"; tm="$(median < "$work/t.txt")"
  echo "DeMo step (prepare + apply), GPT-2-small block + embeddings, topk 32, chunk 64: murmur median $mm ms, reference median $tm ms: $(awk -v a="$mm" -v b="$tm" 'BEGIN{printf "%.2f", b/a}')x faster"
fi
