"""Build, check and time weft's Hopper attention kernels in one call on the GPU machine.

    python3 tools/kernel-dev/harness.py --out $OUT [--sizes 8192,32768,131072] [--skip-time]

1. compiles the variants with NVRTC (ptxas report kept), dumps SASS counts of the main variant;
2. checks each matrix-product form alone (gemm_check.cu) against torch;
3. checks forward (both kernels) and backward on fresh random inputs against an f64 reference,
   next to PyTorch's own bf16 SDPA error on the same inputs (outputs poisoned before each run);
4. times forward and forward+backward against SDPA's FlashAttention-2 and cuDNN backends.
Prints a short table last; writes results.json (+ records .jsonl in weft's bench-record form)."""
import argparse
import concurrent.futures as cf
import json
import math
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cudrv  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--out', default=os.environ.get('OUT', '/tmp/weft-kernel-out'))
ap.add_argument('--sizes', default='8192,32768')
ap.add_argument('--heads', default='32')
ap.add_argument('--long-heads', type=int, default=32, help='heads at S >= 131072')
ap.add_argument('--skip-time', action='store_true')
ap.add_argument('--skip-check', action='store_true')
ap.add_argument('--kernels', default='weft_fwd,weft_fwd_sync')
ap.add_argument('--phase-timeout', type=float, default=240)
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)

RESULTS = {'started': datetime.now(timezone.utc).isoformat(), 'compile': {}, 'gemm': {}, 'checks': [], 'timing': []}
LOG = open(os.path.join(args.out, 'harness.log'), 'w')


def log(*a):
    s = ' '.join(str(x) for x in a)
    print(s, flush=True)
    LOG.write(s + '\n')
    LOG.flush()


def save():
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(RESULTS, f, indent=1, default=str)


class Phase:
    """Arms a watchdog: a phase that hangs (a deadlocked kernel) saves what we have and exits."""

    def __init__(self, name, timeout=None):
        self.name, self.timeout = name, timeout or args.phase_timeout

    def __enter__(self):
        log(f'== {self.name}')
        self.t0 = time.time()

        def fire():
            log(f'!! phase {self.name} exceeded {self.timeout}s: exiting')
            RESULTS['aborted'] = self.name
            save()
            os._exit(3)

        self.timer = threading.Timer(self.timeout, fire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        log(f'   {self.name}: {time.time() - self.t0:.1f}s')
        return False


# ---------------------------------------------------------------------------------------------- compile
VARIANTS = {
    # name: (d, f16, m, stages, with_checks, extra compile flags)
    'd128-bf16': (128, False, 1, 3, True, ()),
    'd64-bf16': (64, False, 1, 4, True, ()),
    'd128-f16': (128, True, 1, 3, False, ()),
    'd128-bf16-m2': (128, False, 2, 3, False, ()),
    'd128-bf16-abl1': (128, False, 1, 3, False, ('-DWEFT_ABL=1',)),
    'd64-bf16-keysplit': (64, False, 1, 4, False, ('-DWEFT_DQ_SPLIT=0',)),
    'd64-bf16-abl1': (64, False, 1, 4, False, ('-DWEFT_ABL=1',)),
}


def _compile(item):
    name, (d, f16, m, stages, checks, extra) = item
    src = cudrv.read_source([os.path.join(HERE, 'gemm_check.cu')] if checks else [])
    t0 = time.time()
    cubin, text = cudrv.compile_source(src, cudrv.variant_options(d=d, f16=f16, m=m, stages=stages, extra=extra))
    return name, cubin, text, time.time() - t0


def ptxas_summary(text):
    out, fn = {}, None
    for line in text.splitlines():
        if 'Function properties for' in line:
            fn = line.split('for', 1)[1].strip()
        elif fn and 'spill' in line:
            out.setdefault(fn, {})['spill'] = line.split('.', 1)[1].strip()
        elif fn and 'Used' in line:
            out.setdefault(fn, {})['regs'] = line.split(':', 1)[1].strip()
    return out


with Phase('compile', 300):
    cubins = {}
    with cf.ProcessPoolExecutor(max_workers=len(VARIANTS)) as ex:
        for name, cubin, text, dt in ex.map(_compile, VARIANTS.items()):
            cubins[name] = cubin
            RESULTS['compile'][name] = {'seconds': round(dt, 2), 'ptxas': ptxas_summary(text),
                                        'warnings': [l for l in text.splitlines() if 'C7' in l or 'arning' in l]}
            with open(os.path.join('/tmp', f'weft-{name}.cubin'), 'wb') as f:
                f.write(cubin)
            s = RESULTS['compile'][name]['ptxas']
            log(f'  {name}: {dt:.1f}s  ' + '  '.join(f"{k}: {v.get('regs', '')} [{v.get('spill', '')}]"
                                                     for k, v in s.items() if k in ('weft_fwd', 'weft_fwd_sync', 'weft_bwd')))
    try:
        sass = subprocess.run(['cuobjdump', '-sass', '/tmp/weft-d128-bf16.cubin'], capture_output=True, text=True, timeout=60).stdout
        with open(os.path.join(args.out, 'sass-d128-bf16.txt'), 'w') as f:
            f.write(sass)
        counts, fn = {}, None
        for line in sass.splitlines():
            if 'Function :' in line:
                fn = line.split('Function :', 1)[1].strip()
                counts[fn] = {}
            elif fn:
                for op in ('HGMMA', 'WARPGROUP.ARRIVE', 'LDL', 'STL', 'BAR.SYNC', 'SYNCS', 'LDGSTS', 'MUFU.EX2', 'RED.E.ADD'):
                    if op in line:
                        counts[fn][op] = counts[fn].get(op, 0) + 1
        RESULTS['sass'] = counts
        for k in ('weft_fwd', 'weft_fwd_sync', 'weft_bwd'):
            log(f'  sass {k}: {counts.get(k)}')
    except Exception as e:  # noqa: BLE001
        log('  cuobjdump failed:', e)
save()

# each kernel once in its own process first: a fault or a hang there drops that kernel, not the run
SMOKE = {}
with Phase('smoke', 200):
    for kern in ('weft_fwd_sync', 'weft_fwd', 'weft_bwd'):
        try:
            p = subprocess.run([sys.executable, os.path.join(HERE, 'smoke.py'), '/tmp/weft-d128-bf16.cubin', kern, '128', '3'],
                               capture_output=True, text=True, timeout=60)
            SMOKE[kern] = p.returncode == 0
            log(f'  {kern}: rc {p.returncode} {p.stdout.strip()} {p.stderr.strip()[-600:]}')
        except subprocess.TimeoutExpired:
            SMOKE[kern] = False
            log(f'  {kern}: HUNG (killed after 60 s)')
    RESULTS['smoke'] = SMOKE
save()

import torch  # noqa: E402  (after the compile pool forked)
import torch.nn.functional as Fn  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

import attn  # noqa: E402
import masks  # noqa: E402

dev = torch.device('cuda')
torch.cuda.init()
torch.zeros(1, device=dev)
torch.backends.cuda.matmul.allow_tf32 = False


def env():
    smi = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit',
                          '--format=csv,noheader'], capture_output=True, text=True).stdout.strip()
    return {'host': socket.gethostname(), 'platform': platform.platform(), 'python': platform.python_version(),
            'torch': torch.__version__, 'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(),
            'gpu': torch.cuda.get_device_name(), 'nvidia_smi': smi, 'gitRevision': os.environ.get('WEFT_GIT_REV'),
            'sms': torch.cuda.get_device_properties(0).multi_processor_count}


RESULTS['env'] = env()
log('env', RESULTS['env'])
V = {n: attn.Variant(c, *VARIANTS[n][:4]) for n, c in cubins.items()}


def rel(a, b):
    a, b = a.double(), b.double()
    if torch.isnan(a).any():
        return float('nan')
    d = (b.norm()).item()
    return (a - b).norm().item() / d if d > 0 else (0.0 if a.norm().item() == 0 else float('inf'))


# ---------------------------------------------------------------------------------------------- gemm checks
if not args.skip_check:
    with Phase('gemm forms'):
        for vn in ('d128-bf16', 'd64-bf16'):
            var = V[vn]
            d = var.d
            g = torch.Generator(device=dev).manual_seed(1)
            r = lambda *s: torch.randn(*s, device=dev, generator=g).to(torch.bfloat16)  # noqa: E731
            cases = {
                0: (r(128, d), r(128, d), lambda a, b: a[:64].double() @ b.double().T, 128),
                1: (r(64, 128), r(128, d), lambda a, b: a.double() @ b.double(), d),
                2: (r(128, 64), r(128, d), lambda a, b: a.double().T @ b[:, :d // 2].double(), d // 2),
                5: (r(128, 64), r(128, d), lambda a, b: a.double().T @ b[:, d // 2:].double(), d // 2),
                3: (r(128, d), r(64, d), lambda a, b: a[:64].double() @ b.double().T, 64),
                4: (r(64, 64), r(64, d), lambda a, b: a.double() @ b.double(), d),
            }
            for mode, (a, b, ref, n) in cases.items():
                c = torch.full((64, n), float('nan'), device=dev)
                cudrv.launch(var.fn('weft_check_gemm', 2 * 128 * 128 * 2 + 1024), (1,), 128,
                             [cudrv.I(mode), cudrv.P(a), cudrv.P(b), cudrv.P(c)], 2 * 128 * 128 * 2 + 1024)
                torch.cuda.synchronize()
                want = ref(a, b)
                e = rel(c, want)
                RESULTS['gemm'][f'{vn}/mode{mode}'] = e
                extra = ''
                if not e < 1e-5:
                    # where it goes wrong: first rows/cols that differ
                    bad = ((c.double() - want).abs() > 1e-2 * want.abs().max()).nonzero()[:6].tolist()
                    extra = f' first bad (row,col): {bad}'
                log(f'  {vn} mode {mode}: rel err {e:.2e}{extra}')
    save()


# ---------------------------------------------------------------------------------------------- attention checks
def reference(q, k, v, allowed, scale, dout):
    Tq, H, D = q.shape
    Tk, Hkv, _ = k.shape
    grp = H // Hkv
    f64 = torch.float64
    out = torch.empty(Tq, H, D, dtype=f64, device=dev)
    lse = torch.empty(H, Tq, dtype=f64, device=dev)
    dq = torch.empty(Tq, H, D, dtype=f64, device=dev)
    dk = torch.zeros(Tk, Hkv, D, dtype=f64, device=dev)
    dv = torch.zeros(Tk, Hkv, D, dtype=f64, device=dev)
    for h in range(H):
        gk = h // grp
        qh, kh, vh, doh = q[:, h].double(), k[:, gk].double(), v[:, gk].double(), dout[:, h].double()
        s = (qh @ kh.T) * scale
        s.masked_fill_(~allowed, float('-inf'))
        ls = torch.logsumexp(s, 1)
        p = torch.nan_to_num(torch.exp(s - ls[:, None]), nan=0.0)
        o = p @ vh
        out[:, h], lse[h] = o, ls
        ds = p * (doh @ vh.T - (doh * o).sum(1)[:, None])
        dq[:, h] = ds @ kh * scale
        dk[:, gk] += ds.T @ qh * scale
        dv[:, gk] += p.T @ doh
        del s, p, ds
    return out, lse, dq, dk, dv


def sdpa_baseline(q, k, v, allowed, scale, dout):
    """PyTorch's own 16-bit SDPA on the same inputs; fully masked rows are given every key and a
    zero dout, which leaves every gradient of the problem unchanged (their P·dS are 0 in exact math)."""
    Tq, H, D = q.shape
    Hkv = k.shape[1]
    grp = H // Hkv
    fm = ~allowed.any(1)
    am = allowed.clone()
    am[fm] = True
    do = dout.clone()
    do[fm] = 0
    q4 = q.permute(1, 0, 2)[None].detach().requires_grad_()
    k4 = k.permute(1, 0, 2).repeat_interleave(grp, 0)[None].detach().requires_grad_()
    v4 = v.permute(1, 0, 2).repeat_interleave(grp, 0)[None].detach().requires_grad_()
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
        o = Fn.scaled_dot_product_attention(q4, k4, v4, attn_mask=am[None, None], scale=scale)
    o.backward(do.permute(1, 0, 2)[None])
    red = lambda t: t[0].view(Hkv, grp, -1, D).sum(1).permute(1, 0, 2)  # noqa: E731
    return o[0].permute(1, 0, 2), q4.grad[0].permute(1, 0, 2), red(k4.grad), red(v4.grad)


def make_inputs(Tq, Tk, H, Hkv, D, dtype, seed):
    g = torch.Generator(device=dev).manual_seed(seed)
    mk = lambda *s: torch.randn(*s, device=dev, generator=g).to(dtype)  # noqa: E731
    return mk(Tq, H, D), mk(Tk, Hkv, D), mk(Tk, Hkv, D), mk(Tq, H, D)


def check_case(name, var, q, k, v, dout, qlo, qhi, kpos, kernels, blocks=None):
    """blocks: split keys into these [a, b) ranges and run the forward as a ring (merge into a
    running fp32 state) and the backward per block (dq accumulating across blocks)."""
    Tq, H, D = q.shape
    Tk, Hkv, _ = k.shape
    scale = 1 / math.sqrt(D)
    allowed = masks.dense(qlo, qhi, kpos)
    rows_ok = allowed.any(1)
    ref_o, ref_l, ref_dq, ref_dk, ref_dv = reference(q, k, v, allowed, scale, dout)
    b_o, b_dq, b_dk, b_dv = sdpa_baseline(q, k, v, allowed, scale, dout)
    base = {'out': rel(b_o[rows_ok], ref_o[rows_ok]), 'dq': rel(b_dq, ref_dq), 'dk': rel(b_dk, ref_dk), 'dv': rel(b_dv, ref_dv)}
    rec = {'name': name, 'variant': f'd{D}-{"f16" if var.f16 else "bf16"}-m{var.m}', 'Tq': Tq, 'Tk': Tk, 'H': H, 'Hkv': Hkv,
           'masked_rows': int((~rows_ok).sum()), 'sdpa': base, 'ours': {}}
    blocks = blocks or [(0, Tk)]
    for kern in kernels:
        out = torch.full((Tq, H, D), float('nan'), device=dev)
        lse = torch.full((H, Tq), float('nan'), device=dev)
        for i, (a, b) in enumerate(blocks):
            view = attn.View(qlo, qhi, kpos[a:b])
            attn.forward(var, q, k[a:b], v[a:b], view, scale, out, lse, merge=i > 0, kernel=kern)
        torch.cuda.synchronize()
        e = {'out': rel(out[rows_ok], ref_o[rows_ok]),
             'lse': (lse[rows_ok.expand(H, -1)] - ref_l[rows_ok.expand(H, -1)]).abs().max().item() if rows_ok.any() else 0.0,
             'nan': bool(torch.isnan(out).any() or torch.isnan(lse).any()),
             'masked_rows_ok': bool((out[~rows_ok] == 0).all() and (lse[:, ~rows_ok] == float('-inf')).all())}
        if len(blocks) > 1:  # the merge kernel: last block computed apart, merged in
            (a, b) = blocks[-1]
            out2 = torch.full((Tq, H, D), float('nan'), device=dev)
            lse2 = torch.full((H, Tq), float('nan'), device=dev)
            for i, (a0, b0) in enumerate(blocks[:-1]):
                attn.forward(var, q, k[a0:b0], v[a0:b0], attn.View(qlo, qhi, kpos[a0:b0]), scale, out2, lse2, merge=i > 0,
                             kernel=kern)
            po = torch.full((Tq, H, D), float('nan'), device=dev)
            pl = torch.full((H, Tq), float('nan'), device=dev)
            attn.forward(var, q, k[a:b], v[a:b], attn.View(qlo, qhi, kpos[a:b]), scale, po, pl, kernel=kern)
            attn.merge_states(var, out2, lse2, po, pl)
            torch.cuda.synchronize()
            e['merge_kernel_out'] = rel(out2[rows_ok], ref_o[rows_ok])
        rec['ours'][kern] = e
    if not BWD_OK:
        rec['pass'] = all(rec['ours'][k_]['out'] <= 2 * base['out'] + 1e-6 for k_ in kernels)
        RESULTS['checks'].append(rec)
        log(f"  {'PASS' if rec['pass'] else 'FAIL'} {name} (forward only): " + str(rec['ours']))
        save()
        return rec['pass']
    # backward from the final (fp32) out and lse, per key block; grads accumulate into random fills
    out = torch.empty((Tq, H, D), device=dev)
    lse = torch.empty((H, Tq), device=dev)
    for i, (a, b) in enumerate(blocks):
        attn.forward(var, q, k[a:b], v[a:b], attn.View(qlo, qhi, kpos[a:b]), scale, out, lse, merge=i > 0, kernel='weft_fwd_sync')
    dlt = torch.full((H, Tq), float('nan'), device=dev)
    attn.delta(var, dout, out, dlt)
    g = torch.Generator(device=dev).manual_seed(99)
    dq0 = torch.randn(Tq, H, D, device=dev, generator=g)
    dk0 = torch.randn(Tk, Hkv, D, device=dev, generator=g)
    dv0 = torch.randn(Tk, Hkv, D, device=dev, generator=g)
    dq, dk, dv = dq0.clone(), dk0.clone(), dv0.clone()
    for (a, b) in blocks:
        attn.backward(var, q, k[a:b], v[a:b], dout, lse, dlt, attn.View(qlo, qhi, kpos[a:b]), scale, dq, dk[a:b], dv[a:b])
    torch.cuda.synchronize()
    rec['ours']['bwd'] = {'dq': rel(dq - dq0, ref_dq), 'dk': rel(dk - dk0, ref_dk), 'dv': rel(dv - dv0, ref_dv),
                          'nan': bool(torch.isnan(dq).any() or torch.isnan(dk).any() or torch.isnan(dv).any())}
    ok = True
    for kern in kernels:
        e = rec['ours'][kern]
        ok &= e['out'] <= 2 * base['out'] + 1e-6 and e['lse'] < 2e-3 and not e['nan'] and e['masked_rows_ok']
        if 'merge_kernel_out' in e:
            ok &= e['merge_kernel_out'] <= 2 * base['out'] + 1e-6
    bw = rec['ours']['bwd']
    ok &= all(bw[x] <= 2 * base[x] + 1e-6 for x in ('dq', 'dk', 'dv')) and not bw['nan']
    rec['pass'] = bool(ok)
    RESULTS['checks'].append(rec)
    fw = '  '.join(f"{k_}: out {rec['ours'][k_]['out']:.2e} lse {rec['ours'][k_]['lse']:.1e}" +
                   (f" merge {rec['ours'][k_]['merge_kernel_out']:.2e}" if 'merge_kernel_out' in rec['ours'][k_] else '') +
                   ('' if rec['ours'][k_]['masked_rows_ok'] else ' MASKED-ROWS-BAD') + (' NaN' if rec['ours'][k_]['nan'] else '')
                   for k_ in kernels)
    log(f"  {'PASS' if ok else 'FAIL'} {name} [{rec['variant']} Tq={Tq} Tk={Tk} H={H}/{Hkv} masked={rec['masked_rows']}]"
        f"  sdpa out {base['out']:.2e} dq {base['dq']:.2e} dk {base['dk']:.2e} dv {base['dv']:.2e} | {fw} |"
        f" bwd dq {bw['dq']:.2e} dk {bw['dk']:.2e} dv {bw['dv']:.2e}{' NaN' if bw['nan'] else ''}")
    save()
    return ok


KERNELS = [k for k in args.kernels.split(',') if k and SMOKE.get(k, True)]
BWD_OK = SMOKE.get('weft_bwd', True)
if not SMOKE.get('weft_bwd', True):
    log('!! backward failed its smoke test: checks and timing of the backward are skipped')


def contiguous_case(name, vn, T, H, Hkv, kind, seed, Tk=None, blocks=None, dtype=torch.bfloat16, **kw):
    var = V[vn]
    Tk = Tk or T
    q, k, v, do = make_inputs(T, Tk, H, Hkv, var.d, torch.float16 if var.f16 else dtype, seed)
    qpos = torch.arange(T, device=dev) + (Tk - T)
    lo, hi = masks.intervals(kind, qpos, Tk, **kw)
    check_case(name, var, q, k, v, do, lo, hi, torch.arange(Tk, device=dev), KERNELS, blocks)


if not args.skip_check:
    with Phase('attention checks', 400):
        cases = [
            ('full', 'd128-bf16', 1000, 4, 4, 'full', {}),
            ('causal', 'd128-bf16', 1537, 4, 4, 'causal', {}),
            ('causal d64', 'd64-bf16', 1537, 4, 4, 'causal', {}),
            ('causal f16', 'd128-f16', 1100, 4, 4, 'causal', {}),
            ('gqa causal', 'd128-bf16', 1024, 8, 2, 'causal', {}),
            ('mqa full d64', 'd64-bf16', 777, 4, 1, 'full', {}),
            ('sliding 300,0', 'd128-bf16', 2048, 4, 4, 'sliding', {'left': 300, 'right': 0}),
            ('sliding 100,50', 'd128-bf16', 1500, 2, 2, 'sliding', {'left': 100, 'right': 50}),
            ('prefix 500', 'd128-bf16', 1500, 4, 4, 'prefix', {'prefix': 500}),
            ('document-causal', 'd128-bf16', 2000, 4, 4, 'document-causal', {'cu': [0, 300, 301, 1200, 2000]}),
            ('sink+window (m=2)', 'd128-bf16-m2', 1800, 4, 4, 'sink-window', {'sink': 64, 'window': 256}),
        ]
        for i, (name, vn, T, H, Hkv, kind, kw) in enumerate(cases):
            try:
                contiguous_case(name, vn, T, H, Hkv, kind, seed=1000 * i + int(time.time()) % 1000, **kw)
            except Exception as e:  # noqa: BLE001
                log(f'  ERROR {name}: {e}')
        # ring: keys in three blocks, forward merged into the running state, backward per block
        contiguous_case('ring causal 3 blocks', 'd128-bf16', 2048, 4, 4, 'causal', 7, blocks=[(0, 700), (700, 1500), (1500, 2048)])
        contiguous_case('ring full 2 blocks d64', 'd64-bf16', 1300, 4, 2, 'full', 8, blocks=[(0, 640), (640, 1300)])
        # zigzag shards: rank 1's queries against rank 2's keys (some rows see nothing), causal
        for vn in ('d128-bf16', 'd64-bf16'):
            var = V[vn]
            S = 4096
            qpos = masks.zigzag_positions(S, 4, 1, dev)
            kpos = masks.zigzag_positions(S, 4, 2, dev)
            q, k, v, do = make_inputs(len(qpos), len(kpos), 4, 4, var.d, torch.bfloat16, 11)
            lo, hi = masks.intervals('causal', qpos, S)
            check_case(f'zigzag r1 x r2 causal {vn}', var, q, k, v, do, lo, hi, kpos, KERNELS)
        # padding rows and keys, causal
        var = V['d128-bf16']
        qpos = torch.arange(700, device=dev)
        qpos[100:150] = -1
        kpos = torch.arange(900, device=dev) - 100
        kpos[kpos < 0] = -1
        kpos[500:560] = -1
        q, k, v, do = make_inputs(700, 900, 4, 4, 128, torch.bfloat16, 12)
        lo, hi = masks.intervals('causal', qpos, 800)
        check_case('padding q+k causal', var, q, k, v, do, lo, hi, kpos, KERNELS)
        # medium size: many tiles
        contiguous_case('causal 8K', 'd128-bf16', 8192, 4, 4, 'causal', 13)
        contiguous_case('full 8K gqa', 'd128-bf16', 8192, 4, 2, 'full', 14)
    npass = sum(c['pass'] for c in RESULTS['checks'])
    log(f'  checks: {npass}/{len(RESULTS["checks"])} pass')
    save()

# ---------------------------------------------------------------------------------------------- timing


def bench(fn, warmup, reps):
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    ts = []
    for i in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn(i)
        e1.record()
        e1.synchronize()
        ts.append(e0.elapsed_time(e1))
    return ts


def stats(ts):
    s = sorted(ts)
    at = lambda f: s[min(len(s) - 1, max(0, round(f * (len(s) - 1))))]  # noqa: E731
    return {'n': len(s), 'median': at(0.5), 'min': s[0], 'max': s[-1], 'p10': at(0.1), 'p90': at(0.9)}


def time_config(S, H, causal, D=128):
    var = V['d128-bf16']
    Hkv = H
    scale = 1 / math.sqrt(D)
    nsets = 2 if S <= 32768 else 1
    sets = [make_inputs(S, S, H, Hkv, D, torch.bfloat16, 100 + i) for i in range(nsets)]
    pos = torch.arange(S, device=dev)
    lo = torch.zeros(S, 1, dtype=torch.int32, device=dev)
    hi = (pos + 1 if causal else torch.full_like(pos, S)).to(torch.int32)[:, None]
    area = S * (S + 1) / 2 if causal else S * S
    fl_fwd = 4 * area * H * D
    fl_fb = 3.5 * fl_fwd
    big = S >= 65536
    wf, rf = (1, 3) if big else (3, 10 if S <= 8192 else 5)
    wb, rb = (1, 2) if big else (2, 8 if S <= 8192 else 4)
    out = torch.empty(S, H, D, device=dev)
    lse = torch.empty(H, S, device=dev)
    dq = torch.empty(S, H, D, device=dev)
    dk = torch.empty(S, Hkv, D, device=dev)
    dv = torch.empty(S, Hkv, D, device=dev)
    dlt = torch.empty(H, S, device=dev)
    res = []

    def record(name, kind, ts, flops):
        st = stats(ts)
        tf = flops / (st['median'] * 1e-3) / 1e12
        r = {'name': name, 'pass': kind, 'S': S, 'H': H, 'D': D, 'mask': 'causal' if causal else 'full', 'ms': st,
             'tflops': tf}
        res.append(r)
        RESULTS['timing'].append(r)
        log(f'  S={S:6d} H={H} {r["mask"]:6s} {kind:7s} {name:14s} {st["median"]:9.3f} ms  {tf:6.1f} TFLOP/s'
            f'  (min {st["min"]:.3f} max {st["max"]:.3f}, n={st["n"]})')
        save()

    for kern in KERNELS:
        def fwd(i, kern=kern):
            q, k, v, _ = sets[i % nsets]
            attn.forward(var, q, k, v, attn.View(lo, hi, pos), scale, out, lse, kernel=kern, cache=False)
        record(kern, 'fwd', bench(fwd, wf, rf), fl_fwd)
    if BWD_OK and KERNELS:
        q, k, v, do = sets[0]
        attn.forward(var, q, k, v, attn.View(lo, hi, pos), scale, out, lse, kernel=KERNELS[0])
        for vn in ('d128-bf16', 'd128-bf16-abl1') if S == 32768 else ('d128-bf16',):
            def bw(i, vn=vn):
                view = attn.View(lo, hi, pos)
                attn.delta(V[vn], do, out, dlt)
                dq.zero_()
                dk.zero_()
                dv.zero_()
                attn.backward(V[vn], q, k, v, do, lse, dlt, view, scale, dq, dk, dv)
            record('weft_bwd' + vn[9:], 'bwd', bench(bw, wb, rb), 2.5 * fl_fwd)

    def fb(i):
        q, k, v, do = sets[i % nsets]
        view = attn.View(lo, hi, pos)
        attn.forward(var, q, k, v, view, scale, out, lse, kernel=KERNELS[0])
        attn.delta(var, do, out, dlt)
        dq.zero_()
        dk.zero_()
        dv.zero_()
        attn.backward(var, q, k, v, do, lse, dlt, view, scale, dq, dk, dv)
    if BWD_OK and KERNELS:
        record('weft', 'fwd+bwd', bench(fb, wb, rb), fl_fb)

    for bname, backend in (('sdpa-flash', SDPBackend.FLASH_ATTENTION), ('sdpa-cudnn', SDPBackend.CUDNN_ATTENTION)):
        t4 = [tuple(x.permute(1, 0, 2)[None] for x in s) for s in sets]
        try:
            def sf(i):
                q, k, v, _ = t4[i % nsets]
                with sdpa_kernel([backend]):
                    Fn.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
            record(bname, 'fwd', bench(sf, wf, rf), fl_fwd)
            leaves = [tuple(x.detach().requires_grad_() for x in s[:3]) + (s[3],) for s in t4]

            def sfb(i):
                q, k, v, do = leaves[i % nsets]
                for x in (q, k, v):
                    x.grad = None
                with sdpa_kernel([backend]):
                    o = Fn.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
                o.backward(do)
            record(bname, 'fwd+bwd', bench(sfb, wb, rb), fl_fb)
        except Exception as e:  # noqa: BLE001
            log(f'  {bname} failed: {e}')
    del sets
    torch.cuda.empty_cache()
    return res


def time_bwd64(S, H, causal):
    """the D = 64 backward builds alone (column split, key split, without the dq reduction)"""
    scale = 1 / math.sqrt(64)
    q, k, v, do = make_inputs(S, S, H, H, 64, torch.bfloat16, 200)
    pos = torch.arange(S, device=dev)
    lo = torch.zeros(S, 1, dtype=torch.int32, device=dev)
    hi = (pos + 1 if causal else torch.full_like(pos, S)).to(torch.int32)[:, None]
    area = S * (S + 1) / 2 if causal else S * S
    out = torch.empty(S, H, 64, device=dev)
    lse = torch.empty(H, S, device=dev)
    dlt = torch.empty(H, S, device=dev)
    dq, dk, dv = (torch.empty(S, H, 64, device=dev) for _ in range(3))
    attn.forward(V['d64-bf16'], q, k, v, attn.View(lo, hi, pos), scale, out, lse)
    for vn in ('d64-bf16', 'd64-bf16-abl1'):
        def bw(i, vn=vn):
            attn.delta(V[vn], do, out, dlt)
            for x in (dq, dk, dv):
                x.zero_()
            attn.backward(V[vn], q, k, v, do, lse, dlt, attn.View(lo, hi, pos), scale, dq, dk, dv)
        ts = bench(bw, 2, 4)
        st = stats(ts)
        tf = 2.5 * 4 * area * H * 64 / (st['median'] * 1e-3) / 1e12
        r = {'name': 'weft_bwd64' + vn[8:], 'pass': 'bwd', 'S': S, 'H': H, 'D': 64, 'mask': 'causal' if causal else 'full',
             'ms': st, 'tflops': tf}
        RESULTS['timing'].append(r)
        log(f'  S={S:6d} H={H} D=64 {r["mask"]:6s} bwd {r["name"]:20s} {st["median"]:9.3f} ms  {tf:6.1f} TFLOP/s')
    save()


if not args.skip_time:
    sizes = [int(s) for s in args.sizes.split(',') if s]
    with Phase('timing', 560):
        for S in sizes:
            H = args.long_heads if S >= 131072 else int(args.heads)
            for causal in (True, False):
                try:
                    time_config(S, H, causal)
                except Exception as e:  # noqa: BLE001
                    log(f'  timing S={S} causal={causal} failed: {e}')
                    torch.cuda.synchronize()
        for causal in (True, False) if BWD_OK else ():
            try:
                time_bwd64(32768, 32, causal)
            except Exception as e:  # noqa: BLE001
                log(f'  D=64 backward timing failed: {e}')

# ---------------------------------------------------------------------------------------------- records + table
RESULTS['finished'] = datetime.now(timezone.utc).isoformat()
save()
recs = []
for r in RESULTS['timing']:
    recs.append({'kind': 'kernel', 'name': r['name'], 'time': RESULTS['finished'],
                 'env': {'host': RESULTS['env']['host'], 'gpus': [RESULTS['env']['gpu']], 'torch': RESULTS['env']['torch'],
                         'driver': RESULTS['env']['nvidia_smi'], 'gitRevision': RESULTS['env']['gitRevision'],
                         'cuda': RESULTS['env']['cuda'], 'cudnn': RESULTS['env']['cudnn']},
                 'config': {'pass': r['pass'], 'S': r['S'], 'B': 1, 'H': r['H'], 'D': r['D'], 'mask': r['mask'],
                            'dtype': 'bf16', 'harness': 'tools/kernel-dev/harness.py'},
                 'unit': 'ms', 'summary': r['ms'], 'derived': {'tflops': r['tflops']}})
if recs:
    with open(os.path.join(args.out, 'records.jsonl'), 'w') as f:
        f.write('\n'.join(json.dumps(x) for x in recs) + '\n')
log('\n== summary')
if RESULTS['checks']:
    log(f"checks {sum(c['pass'] for c in RESULTS['checks'])}/{len(RESULTS['checks'])} pass; failing: "
        f"{[c['name'] for c in RESULTS['checks'] if not c['pass']]}")
if RESULTS['gemm']:
    log('gemm forms: ' + ' '.join(f'{k}={v:.0e}' for k, v in RESULTS['gemm'].items()))
rows = {}
for r in RESULTS['timing']:
    rows.setdefault((r['S'], r['mask'], r['pass']), {})[r['name']] = r['tflops']
if rows:
    log(f"{'S':>7} {'mask':6} {'pass':7} " + ' '.join(f'{n:>13}' for n in ('weft_fwd', 'weft_fwd_sync', 'weft', 'sdpa-flash', 'sdpa-cudnn'))
        + '   x-flash  x-cudnn')
    for (S, m, p), d in rows.items():
        ours = d.get('weft_fwd', d.get('weft_fwd_sync')) if p == 'fwd' else d.get('weft')
        fx = ours / d['sdpa-flash'] if ours and d.get('sdpa-flash') else float('nan')
        cx = ours / d['sdpa-cudnn'] if ours and d.get('sdpa-cudnn') else float('nan')
        log(f'{S:7d} {m:6} {p:7} ' + ' '.join(f'{d.get(n, float("nan")):13.1f}' for n in
                                               ('weft_fwd', 'weft_fwd_sync', 'weft', 'sdpa-flash', 'sdpa-cudnn')) + f'   {fx:6.2f}  {cx:6.2f}')
