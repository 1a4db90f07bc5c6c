#!/usr/bin/env python3
"""PyTorch GPU peer for bench/cuda_bench.cpp: the same case names and shapes on the same device.

Timing as ours: torch.cuda.Event around each repetition, warm-up first, the median of several
repetitions, inputs rotated over >= 3 sets that together exceed twice the L2. Peers at their
best: scaled_dot_product_attention with the flash backend forced for dense/GQA/decode in bf16/fp16
(flash has no fp32 kernel: fp32 forces the memory-efficient backend), enable_gqa where the torch
has it (else K/V repeated outside the timed region); FlexAttention (torch.compile'd) for the
sliding window with sinks and for MoBA as a block mask built from MoBA's own top-k selection;
plain PyTorch for MLA (absorbed form) and Gated DeltaNet (chunked WY/UT form, or the recurrence).
A feature this torch lacks gives a clear "skipped" line, never a crash.

Writes Google Benchmark-compatible JSON, so bench/compare.py pairs it with ours by name.
  --list        parse the cases and say which implementation each would use (no GPU, no torch)
  --selftest    check the plain-PyTorch implementations against each other on the CPU
"""
import argparse
import json
import math
import re
import statistics
import sys
import time

# ---- case names (bench/cuda_bench.cpp writes them) ------------------------------------------


def parse(name):
    """'prefill/dense/bf16/B1/H16/kv16/D128/causal/L16384' -> dict of fields; None if unknown."""
    name = name.strip().removesuffix("/real_time")
    parts = name.split("/")
    if len(parts) < 4:
        return None
    c = {"name": name, "mode": parts[0], "variant": parts[1], "prec": parts[2], "flags": set()}
    for tok in parts[3:]:
        m = re.fullmatch(r"([A-Za-z]+)(\d+)", tok)
        if m:
            c[m[1]] = int(m[2])
        else:
            c["flags"].add(tok)
    if c["mode"] not in ("prefill", "decode", "paged_decode"):
        return None
    if c["prec"] not in ("fp32", "bf16", "fp16"):
        return None
    need = {
        ("prefill", "dense"): ("B", "H", "kv", "D", "L"),
        ("prefill", "swa"): ("B", "H", "kv", "D", "W", "S", "L"),
        ("prefill", "moba"): ("B", "H", "kv", "D", "bs", "k", "L"),
        ("prefill", "gated_delta"): ("B", "H", "D", "L"),
        ("decode", "dense"): ("B", "H", "kv", "D", "ctx"),
        ("paged_decode", "dense"): ("B", "H", "kv", "D", "ctx"),
        ("decode", "mla"): ("B", "H", "dc", "dr", "dn", "dv", "ctx"),
        ("paged_decode", "mla"): ("B", "H", "dc", "dr", "dn", "dv", "ctx"),
    }.get((c["mode"], c["variant"]))
    if need is None or any(f not in c for f in need):
        return None
    return c


def plan(c):
    """The implementation a case gets, in words (what --list prints and the JSON labels say)."""
    mode, v, prec = c["mode"], c["variant"], c["prec"]
    sdpa = ("scaled_dot_product_attention, flash backend forced" if prec != "fp32" else
            "scaled_dot_product_attention, memory-efficient backend forced (flash has no fp32)")
    if v == "dense":
        gqa = ", enable_gqa (else K/V repeated outside timing)" if c["H"] != c["kv"] else ""
        paged = "; flat K/V: PyTorch has no paged kernel" if mode == "paged_decode" else ""
        return sdpa + gqa + paged
    if v == "swa":
        return "flex_attention (torch.compile), sliding window + sinks mask_mod"
    if v == "moba":
        return ("flex_attention (torch.compile), BlockMask from MoBA's top-k selection "
                "(gate, top-k and mask built inside the timed region)")
    if v == "mla":
        return "plain PyTorch, absorbed form (einsum, matmul, softmax)" + (
            "; flat latent: no paged kernel" if mode == "paged_decode" else "")
    if v == "gated_delta":
        return "plain PyTorch, " + ("recurrence (a step per token)" if "recurrent" in c["flags"]
                                   else "chunked WY/UT form (chunk 64)")
    return "?"


# ---- plain-PyTorch implementations (CPU-testable) --------------------------------------------


def accumulator(x):
    """float64 stays float64 (the self-test); everything else accumulates in float32."""
    import torch
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def l2norm(x):
    import torch
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-6) if x.numel() else x


def gdn_recurrent(q, k, v, g, beta, scale, qk_l2norm):
    """S <- e^g S; u = beta (v - S^T k); S += k u^T; o = S^T (scale q). q,k [B,H,L,Dk]."""
    import torch
    if qk_l2norm:
        q, k = l2norm(q), l2norm(k)
    B, H, L, Dk = k.shape
    acc = accumulator(q)
    S = torch.zeros(B, H, Dk, v.shape[-1], dtype=acc, device=q.device)
    out = torch.empty(B, H, L, v.shape[-1], dtype=acc, device=q.device)
    for t in range(L):
        S = S * torch.exp(g[:, :, t].to(acc)).unsqueeze(-1).unsqueeze(-1)
        kt = k[:, :, t].to(acc)
        u = beta[:, :, t].to(acc).unsqueeze(-1) * (v[:, :, t].to(acc) -
                                                   torch.einsum("bhkv,bhk->bhv", S, kt))
        S = S + kt.unsqueeze(-1) * u.unsqueeze(-2)
        out[:, :, t] = torch.einsum("bhkv,bhk->bhv", S, scale * q[:, :, t].to(acc))
    return out, S


def gdn_chunked(q, k, v, g, beta, scale, qk_l2norm, chunk=64):
    """The same recurrence in chunks (Gated DeltaNet, Yang et al. 2024): inside a chunk with
    decays Gamma_i = exp(G_i) (G = cumulative g from the chunk start), the updates U solve
    (I + A) U = diag(beta) (V - diag(Gamma) K S0), A_ij = beta_i Gamma_i/Gamma_j k_i.k_j (j < i);
    o_i = scale (Gamma_i S0^T q_i + sum_{j<=i} Gamma_i/Gamma_j (q_i.k_j) u_j);
    S_C = Gamma_C S0 + sum_j Gamma_C/Gamma_j k_j u_j^T. Everything but the S0 terms is computed for
    all chunks at once; the chunks then chain through S0."""
    import torch
    if qk_l2norm:
        q, k = l2norm(q), l2norm(k)
    B, H, L, Dk = k.shape
    Dv = v.shape[-1]
    pad = (-L) % chunk
    if pad:  # zero-padded tokens: g = 0, beta = 0 leave the state alone and produce nothing used
        f = torch.nn.functional.pad
        q, k, v = f(q, (0, 0, 0, pad)), f(k, (0, 0, 0, pad)), f(v, (0, 0, 0, pad))
        g, beta = f(g, (0, pad)), f(beta, (0, pad))
    n = (L + pad) // chunk
    acc = accumulator(q)
    q = q.to(acc).reshape(B, H, n, chunk, Dk) * scale
    k = k.to(acc).reshape(B, H, n, chunk, Dk)
    v = v.to(acc).reshape(B, H, n, chunk, Dv)
    G = g.to(acc).reshape(B, H, n, chunk).cumsum(-1)
    bt = beta.to(acc).reshape(B, H, n, chunk)
    ratio = torch.exp(G.unsqueeze(-1) - G.unsqueeze(-2))  # Gamma_i / Gamma_j
    strict = torch.tril(torch.ones(chunk, chunk, dtype=torch.bool, device=q.device), -1)
    causal = torch.tril(torch.ones(chunk, chunk, dtype=torch.bool, device=q.device))
    kk = k @ k.transpose(-1, -2)
    zero = torch.zeros((), dtype=acc, device=q.device)
    A = torch.where(strict, bt.unsqueeze(-1) * ratio * kk, zero)
    eye = torch.eye(chunk, dtype=acc, device=q.device)
    T = torch.linalg.solve_triangular(eye + A, eye.expand_as(A).contiguous(), upper=False)
    gam = torch.exp(G)
    W = T @ ((bt * gam).unsqueeze(-1) * k)  # [.., C, Dk]: U = U0 - W S0
    U0 = T @ (bt.unsqueeze(-1) * v)  # [.., C, Dv]
    QK = torch.where(causal, ratio * (q @ k.transpose(-1, -2)), zero)
    Qg = gam.unsqueeze(-1) * q
    Kc = torch.exp(G[..., -1:] - G).unsqueeze(-1) * k  # Gamma_C / Gamma_j k_j
    gC = torch.exp(G[..., -1])
    S = torch.zeros(B, H, Dk, Dv, dtype=acc, device=q.device)
    out = torch.empty(B, H, n, chunk, Dv, dtype=acc, device=q.device)
    for c in range(n):
        U = U0[:, :, c] - W[:, :, c] @ S
        out[:, :, c] = Qg[:, :, c] @ S + QK[:, :, c] @ U
        S = gC[:, :, c].unsqueeze(-1).unsqueeze(-1) * S + Kc[:, :, c].transpose(-1, -2) @ U
    return out.reshape(B, H, n * chunk, Dv)[:, :, :L], S


def mla_absorbed(q, c_kv, k_rope, w_uk, w_uv, scale):
    """q [B,H,Lq,Dn+Dr], c_kv [B,Lk,Dc], k_rope [B,Lk,Dr], w_uk [H,Dn,Dc], w_uv [H,Dv,Dc];
    one query per row that sees every key (decode). Scores in the latent, softmax in fp32."""
    import torch
    Dn = w_uk.shape[1]
    q_abs = torch.einsum("bhqn,hnc->bhqc", q[..., :Dn], w_uk)
    s = q_abs @ c_kv.unsqueeze(1).transpose(-1, -2)
    s = s + q[..., Dn:] @ k_rope.unsqueeze(1).transpose(-1, -2)
    p = torch.softmax(s.to(accumulator(s)) * scale, dim=-1).to(q.dtype)
    x = p @ c_kv.unsqueeze(1)
    return torch.einsum("bhqc,hvc->bhqv", x, w_uv)


def mla_expanded(q, c_kv, k_rope, w_uk, w_uv, scale):
    """The naive form (K and V expanded per head), to check mla_absorbed against."""
    import torch
    Dn = w_uk.shape[1]
    k_nope = torch.einsum("blc,hnc->bhln", c_kv, w_uk)
    vh = torch.einsum("blc,hvc->bhlv", c_kv, w_uv)
    k = torch.cat([k_nope, k_rope.unsqueeze(1).expand(-1, w_uk.shape[0], -1, -1)], -1)
    s = q @ k.transpose(-1, -2)
    p = torch.softmax(s.to(accumulator(s)) * scale, dim=-1).to(q.dtype)
    return p @ vh


def moba_selection(q, k, block, top_k):
    """MoBA's routing (docs/variants/moba.md): the own block plus the top_k - 1 complete past
    blocks with the largest q . mean(k) (no scale), for q [B,H,L,D], k [B,Hkv,L,D] with Lq = Lk.
    Returns a bool [B,H,L,blocks] map of the selected blocks."""
    import torch
    B, H, L, D = q.shape
    Hkv = k.shape[1]
    nb = (L + block - 1) // block
    pad = nb * block - L
    acc = accumulator(q)
    kp = torch.nn.functional.pad(k.to(acc), (0, 0, 0, pad)).reshape(B, Hkv, nb, block, D)
    counts = torch.full((nb,), float(block), dtype=acc, device=q.device)
    counts[-1] = block - pad
    kbar = kp.sum(3) / counts.unsqueeze(-1)  # [B, Hkv, nb, D]
    kbar = kbar.repeat_interleave(H // Hkv, dim=1)
    gate = q.to(acc) @ kbar.transpose(-1, -2)  # [B, H, L, nb]
    own = (torch.arange(L, device=q.device) // block).view(1, 1, L, 1)
    blk = torch.arange(nb, device=q.device).view(1, 1, 1, nb)
    gate = gate.masked_fill(blk >= own, float("-inf"))  # past complete blocks only
    sel = (blk == own).expand(B, H, L, nb).clone()
    if top_k > 1 and nb > 1:
        vals, idx = torch.topk(gate, min(top_k - 1, nb), dim=-1)
        picked = torch.zeros_like(sel)
        picked.scatter_(-1, idx, vals > float("-inf"))
        sel = sel | picked
    return sel


def moba_dense_reference(q, k, v, block, top_k, scale):
    """MoBA through a dense masked softmax (small shapes only): the semantics flex must match."""
    import torch
    B, H, L, D = q.shape
    sel = moba_selection(q, k, block, top_k)
    blocks_of_key = torch.arange(L, device=q.device) // block
    allowed = sel[..., blocks_of_key]  # [B, H, L, L]
    allowed &= torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    kk = k.repeat_interleave(H // k.shape[1], dim=1)
    vv = v.repeat_interleave(H // v.shape[1], dim=1)
    acc = accumulator(q)
    s = (q.to(acc) @ kk.to(acc).transpose(-1, -2)) * scale
    p = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
    return p @ vv.to(acc)


# ---- GPU: inputs, timing, the peers --------------------------------------------------------


class Skip(Exception):
    """A case this torch or device cannot run: reported as a skip line."""


def dtype_of(prec):
    import torch
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[prec]


def l2_bytes():
    import torch
    props = torch.cuda.get_device_properties(0)
    return int(getattr(props, "L2_cache_size", 0) or getattr(props, "l2_cache_size", 0) or 50 << 20)


def make_sets(make_one, set_bytes, min_sets):
    """Input sets to rotate: >= min_sets and >= 2x L2 together, within half the free memory."""
    import torch
    free, _ = torch.cuda.mem_get_info()
    n = max(min_sets, math.ceil(2 * l2_bytes() / max(set_bytes, 1)))
    while n > 1 and n * set_bytes > 0.5 * free:
        n -= 1
    if set_bytes > 0.5 * free:
        raise Skip(f"one input set needs {set_bytes >> 20} MiB, {free >> 20} MiB free")
    return [make_one(i) for i in range(n)]


def time_cuda(fn, sets, a):
    """Warm-up (ended early by a repetition over 1 s), one timed repetition to size the rest, the
    rest back to back; each repetition between its own CUDA events; sets rotate throughout."""
    import torch
    nxt = 0
    for _ in range(a.warmup):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn(sets[nxt % len(sets)])
        nxt += 1
        e1.record()
        e1.synchronize()
        if e0.elapsed_time(e1) > 1000:
            break
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))]
    events[0][0].record()
    fn(sets[nxt % len(sets)])
    nxt += 1
    events[0][1].record()
    events[0][1].synchronize()
    first = events[0][0].elapsed_time(events[0][1])
    reps = min(a.max_reps, max(a.min_reps, math.ceil(a.target_s * 1e3 / max(first, 1e-3))))
    for _ in range(reps - 1):
        e = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        e[0].record()
        fn(sets[nxt % len(sets)])
        nxt += 1
        e[1].record()
        events.append(e)
    torch.cuda.synchronize()
    return [s.elapsed_time(t) for s, t in events]


def sdpa_backend_ctx(prec):
    """Forces the flash backend (bf16/fp16) or the memory-efficient one (fp32)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        raise Skip(f"torch.nn.attention.sdpa_kernel unavailable ({e})")
    return sdpa_kernel(SDPBackend.FLASH_ATTENTION if prec != "fp32" else SDPBackend.EFFICIENT_ATTENTION)


def first_that_runs(candidates, sets):
    """The first (label, fn, sets) whose warm-up call succeeds: enable_gqa, then repeated K/V."""
    errors = []
    for label, fn, prep in candidates:
        try:
            s = prep(sets) if prep else sets
            fn(s[0])
            import torch
            torch.cuda.synchronize()
            return label, fn, s
        except Skip:
            raise
        except Exception as e:  # noqa: BLE001 - any failure means "try the next way"
            errors.append(f"{label}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    raise Skip("; ".join(errors))


def repeat_kv(group):
    def prep(sets):
        return [dict(s, k=s["k"].repeat_interleave(group, 1), v=s["v"].repeat_interleave(group, 1))
                for s in sets]
    return prep


def case_dense(c, a):
    """Dense / GQA prefill and flat or 'paged' decode through SDPA."""
    import torch
    import torch.nn.functional as F
    dt = dtype_of(c["prec"])
    B, H, Hkv, D = c["B"], c["H"], c["kv"], c["D"]
    Lq, Lk = (c["L"], c["L"]) if c["mode"] == "prefill" else (1, c["ctx"])
    causal = "causal" in c["flags"] and c["mode"] == "prefill"  # a decode row sees every key

    def one(i):
        g = torch.Generator(device="cuda").manual_seed(1000 + i)
        return {n: torch.randn(*sh, device="cuda", dtype=dt, generator=g)
                for n, sh in (("q", (B, H, Lq, D)), ("k", (B, Hkv, Lk, D)), ("v", (B, Hkv, Lk, D)))}

    elem = torch.tensor([], dtype=dt).element_size()
    sets = make_sets(one, elem * (B * H * Lq * D + 2 * B * Hkv * Lk * D), a.min_sets)

    def run(gqa):
        def fn(s):
            with sdpa_backend_ctx(c["prec"]):  # a fresh context each call: they are one-shot
                kw = {"enable_gqa": True} if gqa else {}
                return F.scaled_dot_product_attention(s["q"], s["k"], s["v"], is_causal=causal, **kw)
        return fn

    cands = [("", run(False), None)] if H == Hkv else [
        ("enable_gqa", run(True), None), ("K/V repeated outside timing", run(False), repeat_kv(H // Hkv))]
    label, fn, sets = first_that_runs(cands, sets)
    return fn, sets, label


_FLEX = {}


def flex():
    if "fn" not in _FLEX:
        try:
            import torch
            from torch.nn.attention.flex_attention import flex_attention
        except ImportError as e:
            raise Skip(f"torch.nn.attention.flex_attention unavailable ({e})")
        _FLEX["fn"] = torch.compile(flex_attention, dynamic=False)
    return _FLEX["fn"]


def case_swa(c, a):
    import torch
    from torch.nn.attention.flex_attention import create_block_mask
    dt = dtype_of(c["prec"])
    B, H, Hkv, D, L, W, S = c["B"], c["H"], c["kv"], c["D"], c["L"], c["W"], c["S"]

    def mask_mod(b, h, qi, kj):  # docs/variants/swa.md: p - W < j <= p, or j < sinks (p = qi)
        return (kj <= qi) & ((qi - kj < W) | (kj < S))

    bm = create_block_mask(mask_mod, None, None, L, L, device="cuda")
    f = flex()

    def one(i):
        g = torch.Generator(device="cuda").manual_seed(2000 + i)
        return {n: torch.randn(B, hh, L, D, device="cuda", dtype=dt, generator=g)
                for n, hh in (("q", H), ("k", Hkv), ("v", Hkv))}

    elem = torch.tensor([], dtype=dt).element_size()
    sets = make_sets(one, elem * B * L * D * (H + 2 * Hkv), a.min_sets)

    def run(gqa):
        def fn(s):
            kw = {"enable_gqa": True} if gqa else {}
            return f(s["q"], s["k"], s["v"], block_mask=bm, scale=1.0 / math.sqrt(D), **kw)
        return fn

    cands = [("", run(False), None)] if H == Hkv else [
        ("enable_gqa", run(True), None), ("K/V repeated outside timing", run(False), repeat_kv(H // Hkv))]
    label, fn, sets = first_that_runs(cands, sets)
    return fn, sets, label


def case_moba(c, a):
    """MoBA through FlexAttention: per call, MoBA's routing (block means, gate, top-k: the same
    semantics as ours), then a BlockMask whose kv blocks for each 128-query block are the union of
    its rows' selections, refined per token by mask_mod; all of it inside the timed region."""
    import torch
    from torch.nn.attention.flex_attention import BlockMask
    dt = dtype_of(c["prec"])
    B, H, Hkv, D, L, bs, top_k = c["B"], c["H"], c["kv"], c["D"], c["L"], c["bs"], c["k"]
    FB = 128  # flex's block size
    if L % FB or (bs % FB and FB % bs):
        raise Skip(f"L must be a multiple of {FB} and the MoBA block a multiple or divisor of it")
    f = flex()
    nqb = L // FB
    # One mask_mod over one buffer for every call: a new closure (or captured tensor) per call
    # would make torch.compile recompile; the buffer's contents change, not its identity.
    sel_buf = torch.zeros(B, H, L, (L + bs - 1) // bs, dtype=torch.bool, device="cuda")

    def mask_mod(b, h, qi, kj):
        return sel_buf[b, h, qi, kj // bs] & (kj <= qi)

    def fn(s):
        sel = moba_selection(s["q"], s["k"], bs, top_k)  # [B, H, L, nb]
        sel_buf.copy_(sel)
        per_q = sel.view(B, H, nqb, FB, -1).any(3)  # [B, H, nqb, MoBA blocks]
        if bs >= FB:
            per_q = per_q.repeat_interleave(bs // FB, dim=-1)[..., : L // FB]
        else:
            per_q = per_q.view(B, H, nqb, L // FB, FB // bs).any(-1)
        num = per_q.sum(-1, dtype=torch.int32)
        idx = torch.argsort(per_q.to(torch.int8), dim=-1, descending=True, stable=True).to(torch.int32)
        try:
            bm = BlockMask.from_kv_blocks(num, idx, BLOCK_SIZE=FB, mask_mod=mask_mod, seq_lengths=(L, L))
        except TypeError:
            bm = BlockMask.from_kv_blocks(num, idx, BLOCK_SIZE=FB, mask_mod=mask_mod)
        kw = {"enable_gqa": True} if H != Hkv else {}
        return f(s["q"], s["k"], s["v"], block_mask=bm, scale=1.0 / math.sqrt(D), **kw)

    def one(i):
        g = torch.Generator(device="cuda").manual_seed(3000 + i)
        return {n: torch.randn(B, hh, L, D, device="cuda", dtype=dt, generator=g)
                for n, hh in (("q", H), ("k", Hkv), ("v", Hkv))}

    elem = torch.tensor([], dtype=dt).element_size()
    sets = make_sets(one, elem * B * L * D * (H + 2 * Hkv), a.min_sets)
    label, fn, sets = first_that_runs([("", fn, None)], sets)
    return fn, sets, label


def case_mla(c, a):
    import torch
    dt = dtype_of(c["prec"])
    B, H, Dc, Dr, Dn, Dv, ctx = c["B"], c["H"], c["dc"], c["dr"], c["dn"], c["dv"], c["ctx"]
    scale = 1.0 / math.sqrt(Dn + Dr)

    def one(i):
        g = torch.Generator(device="cuda").manual_seed(4000 + i)
        r = lambda *sh, s=1.0: torch.randn(*sh, device="cuda", dtype=dt, generator=g) * s  # noqa: E731
        return {"q": r(B, H, 1, Dn + Dr), "c_kv": r(B, ctx, Dc), "k_rope": r(B, ctx, Dr),
                "w_uk": r(H, Dn, Dc, s=Dc ** -0.5), "w_uv": r(H, Dv, Dc, s=Dc ** -0.5)}

    elem = torch.tensor([], dtype=dt).element_size()
    sets = make_sets(one, elem * (B * H * (Dn + Dr) + B * ctx * (Dc + Dr) + H * (Dn + Dv) * Dc),
                     a.min_sets)

    def fn(s):
        return mla_absorbed(s["q"], s["c_kv"], s["k_rope"], s["w_uk"], s["w_uv"], scale)

    return first_that_runs([("", fn, None)], sets)[1:] + ("",)


def case_gdn(c, a):
    import torch
    if c["prec"] != "fp32":
        raise Skip("Gated DeltaNet is compared in fp32 only")
    B, H, D, L = c["B"], c["H"], c["D"], c["L"]
    recurrent = "recurrent" in c["flags"]

    def one(i):
        g = torch.Generator(device="cuda").manual_seed(5000 + i)
        u = lambda lo, hi: lo + (hi - lo) * torch.rand(B, H, L, device="cuda", generator=g)  # noqa: E731
        return {"q": torch.randn(B, H, L, D, device="cuda", generator=g),
                "k": torch.randn(B, H, L, D, device="cuda", generator=g) * D ** -0.5,
                "v": torch.randn(B, H, L, D, device="cuda", generator=g),
                "g": u(-0.1, -0.001), "beta": u(0.05, 0.95)}

    sets = make_sets(one, 4 * B * H * L * (3 * D + 2), a.min_sets)
    impl = gdn_recurrent if recurrent else gdn_chunked

    def fn(s):
        return impl(s["q"], s["k"], s["v"], s["g"], s["beta"], D ** -0.5, True)

    return first_that_runs([("", fn, None)], sets)[1:] + ("",)


def build(c, a):
    v = c["variant"]
    if v == "dense":
        return case_dense(c, a)
    if v == "swa":
        return case_swa(c, a)
    if v == "moba":
        return case_moba(c, a)
    if v == "mla":
        return case_mla(c, a)
    if v == "gated_delta":
        return case_gdn(c, a)
    raise Skip("no peer for this variant")


def order(cases):
    """SDPA and plain-PyTorch cases first: FlexAttention compiles (tens of seconds) come last, so
    a tight budget drops them rather than the cheap comparisons."""
    return sorted(cases, key=lambda c: (c["variant"] in ("swa", "moba"), c["variant"] == "moba",
                                        c.get("L", 0)))


def measure(c, a):
    """Times one case; its inputs and buffers are freed when this returns."""
    import torch
    with torch.no_grad():
        fn, sets, how = build(c, a)
        return time_cuda(fn, sets, a), how


def run_gpu(a, cases):
    import torch
    ours = {}
    if a.ours:
        with open(a.ours) as f:
            ours = {b["name"]: b for b in json.load(f).get("benchmarks", [])}
    results, t0 = [], time.perf_counter()
    ctx = {"peer": "pytorch", "torch_version": torch.__version__,
           "device": torch.cuda.get_device_name(0), "method": "torch.cuda.Event per repetition, "
           "warm-up, median; inputs rotated over >= 3 sets (>= 2x L2)"}
    for c in order(cases):
        if time.perf_counter() - t0 > a.budget_s:
            print(f"torch peer: {c['name']}: skipped: the {a.budget_s:.0f} s budget is spent",
                  file=sys.stderr)
            continue
        try:
            ms, how = measure(c, a)
        except Skip as e:
            print(f"torch peer: {c['name']}: skipped: {e}", file=sys.stderr)
            continue
        except Exception as e:  # noqa: BLE001 - one broken case must not end the run
            print(f"torch peer: {c['name']}: skipped: {type(e).__name__}: {str(e).splitlines()[0][:300]}",
                  file=sys.stderr)
            continue
        finally:
            torch.cuda.empty_cache()
        med = statistics.median(ms)
        q = statistics.quantiles(ms, n=4) if len(ms) > 1 else [med, med, med]
        entry = {"name": c["name"], "run_name": c["name"], "run_type": "iteration",
                 "iterations": len(ms), "real_time": med, "cpu_time": med, "time_unit": "ms",
                 "min_ms": min(ms), "max_ms": max(ms), "p25_ms": q[0], "p75_ms": q[2],
                 "label": plan(c) + (f" [{how}]" if how else "")}
        if c["name"] in ours:  # the cost model's counts, as ours uses
            entry["GFLOPs"] = ours[c["name"]]["flops"] / (med * 1e-3) / 1e9
            entry["GBps"] = ours[c["name"]]["bytes"] / (med * 1e-3) / 1e9
        results.append(entry)
        print(f"torch peer: {c['name']}: {med:.3f} ms ({min(ms):.3f}-{max(ms):.3f}), {entry['label']}",
              file=sys.stderr, flush=True)
    ctx["elapsed_s"] = time.perf_counter() - t0
    return ctx, results


# ---- self-test (CPU) -------------------------------------------------------------------------


def write_safetensors(path, tensors):
    """Minimal .safetensors writer (fp32): 8-byte header size, JSON header, raw data."""
    import struct
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to("cpu", dtype=__import__("torch").float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    import struct
    import torch
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, d in header.items():
        if name == "__metadata__" or d["dtype"] != "F32":
            continue
        a, b = d["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(d["shape"])
    return out


def engine_run(cli, args, tensors):
    """Runs attnscope-cli's float64 reference on these inputs and returns its outputs."""
    import os
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.safetensors"), os.path.join(d, "out.safetensors")
        write_safetensors(src, tensors)
        subprocess.run([cli, "run", "--backend", "reference", "--inputs", src, "--out", dst] + args,
                       check=True, stdout=subprocess.DEVNULL)
        return read_safetensors(dst)


def selftest(cli=None):
    """The plain-PyTorch peers against each other in float64 on the CPU: chunked == recurrent
    Gated DeltaNet (ragged last chunk too), absorbed == expanded MLA, MoBA's selection by brute
    force; with cli (attnscope-cli), each against attnscope's float64 reference on the same inputs,
    so the peer computes the same function as ours. Flex/SDPA paths need a GPU."""
    import torch
    torch.manual_seed(0)
    ok = True

    def check(what, got, want, tol):
        nonlocal ok
        err = (got.double() - want.double()).abs().max().item()
        print(f"selftest {what}: max error {err:.2e} (tolerance {tol:g}) {'ok' if err <= tol else 'FAIL'}")
        ok &= err <= tol

    B, H, L, D = 2, 3, 150, 16
    q, k, v = (torch.randn(B, H, L, D, dtype=torch.float64) for _ in range(3))
    g = -0.1 * torch.rand(B, H, L, dtype=torch.float64)
    beta = torch.rand(B, H, L, dtype=torch.float64)
    o_r, s_r = gdn_recurrent(q, k, v, g, beta, D ** -0.5, True)
    o_c, s_c = gdn_chunked(q, k, v, g, beta, D ** -0.5, True, chunk=64)
    check("gdn chunked == recurrent (o)", o_c, o_r, 1e-12)
    check("gdn chunked == recurrent (state)", s_c, s_r, 1e-12)

    Dn, Dr, Dc, Dv, ctx = 8, 4, 16, 6, 37
    qm = torch.randn(B, H, 1, Dn + Dr, dtype=torch.float64)
    c_kv, k_rope = torch.randn(B, ctx, Dc, dtype=torch.float64), torch.randn(B, ctx, Dr, dtype=torch.float64)
    w_uk, w_uv = torch.randn(H, Dn, Dc, dtype=torch.float64), torch.randn(H, Dv, Dc, dtype=torch.float64)
    sc = (Dn + Dr) ** -0.5
    check("mla absorbed == expanded", mla_absorbed(qm, c_kv, k_rope, w_uk, w_uv, sc),
          mla_expanded(qm, c_kv, k_rope, w_uk, w_uv, sc), 1e-9)

    bs, top_k, Hkv = 8, 3, 1
    qq, kk = torch.randn(1, 2, 45, D, dtype=torch.float64), torch.randn(1, Hkv, 45, D, dtype=torch.float64)
    sel = moba_selection(qq, kk, bs, top_k)
    for h in range(2):
        for i in range(45):
            own = i // bs
            means = [kk[0, 0, c * bs:min(45, (c + 1) * bs)].mean(0) for c in range(own)]
            gates = sorted(range(own), key=lambda c: -(qq[0, h, i] @ means[c]).item())
            want = set(gates[: top_k - 1]) | {own}
            got = set(torch.nonzero(sel[0, h, i]).flatten().tolist())
            if got != want:
                print(f"selftest moba selection: head {h} row {i}: {sorted(got)} != {sorted(want)} FAIL")
                ok = False
    print("selftest moba selection: " + ("ok" if ok else "see above"))
    if not cli:
        return ok

    # Against attnscope's reference (fp32 inputs, float64 inside; the peers here in float64).
    f32 = lambda *t: [x.float() for x in t]  # noqa: E731
    q, k, v = f32(q, k, v)
    g, beta = f32(g, beta)
    want = engine_run(cli, ["--variant", "gated_delta", "--qk-l2norm"],
                      {"q": q, "k": k, "v": v, "g": g, "beta": beta})
    dbl = lambda *t: [x.double() for x in t]  # noqa: E731
    check("gdn chunked == attnscope reference", gdn_chunked(*dbl(q, k, v, g, beta), D ** -0.5, True)[0],
          want["o"], 1e-5)
    check("gdn recurrent == attnscope reference (state)",
          gdn_recurrent(*dbl(q, k, v, g, beta), D ** -0.5, True)[1], want["final_state"], 1e-5)
    qm, c_kv, k_rope, w_uk, w_uv = f32(qm, c_kv, k_rope, w_uk, w_uv)
    want = engine_run(cli, ["--variant", "mla", "--causal"],
                      {"q": qm, "c_kv": c_kv, "k_rope": k_rope, "w_uk": w_uk, "w_uv": w_uv})
    check("mla absorbed == attnscope reference (decode row)",
          mla_absorbed(*dbl(qm, c_kv, k_rope, w_uk, w_uv), sc), want["o"], 1e-5)
    H2, L2, bs2, k2 = 4, 70, 8, 3
    qq = torch.randn(1, H2, L2, D)
    kk, vv = torch.randn(1, 2, L2, D), torch.randn(1, 2, L2, D)
    want = engine_run(cli, ["--variant", "moba", "--block-size", str(bs2), "--top-k", str(k2)],
                      {"q": qq, "k": kk, "v": vv})
    check("moba semantics (flex's mask) == attnscope reference",
          moba_dense_reference(*dbl(qq, kk, vv), bs2, k2, D ** -0.5), want["o"], 1e-5)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=[], help="case names (attnscope_cuda_bench --list)")
    ap.add_argument("--cases-file", help="file with one case name per line")
    ap.add_argument("--out", help="JSON output")
    ap.add_argument("--ours", help="our JSON: FLOP and byte counts for the peer's rates")
    ap.add_argument("--list", action="store_true", help="print the plan per case and exit")
    ap.add_argument("--selftest", action="store_true", help="CPU checks of the plain-PyTorch peers")
    ap.add_argument("--engine", help="with --selftest: attnscope-cli, to check against its reference")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=50)
    ap.add_argument("--target-s", type=float, default=0.5)
    ap.add_argument("--min-sets", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=200)
    a = ap.parse_args()
    if a.selftest:
        return 0 if selftest(a.engine) else 1
    names = list(a.cases)
    if a.cases_file:
        with open(a.cases_file) as f:
            names += [ln.strip() for ln in f if ln.strip()]
    cases = []
    for n in names:
        c = parse(n)
        if c is None:
            print(f"torch peer: no equivalent for {n}; skipped", file=sys.stderr)
        else:
            cases.append(c)
    if a.list:
        for c in cases:
            print(f"{c['name']}: {plan(c)}")
        return 0
    ctx, results = {"peer": "pytorch"}, []
    try:
        import torch
        have_gpu = torch.cuda.is_available()
        why = "torch.cuda.is_available() is False"
    except ImportError as e:
        have_gpu, why = False, f"no torch ({e})"
    if not have_gpu:
        print(f"torch peer: no CUDA device ({why}): nothing timed", file=sys.stderr)
        ctx["device"] = "none: " + why
    else:
        ctx, results = run_gpu(a, cases)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"context": ctx, "benchmarks": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
