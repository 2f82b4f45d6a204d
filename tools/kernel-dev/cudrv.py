"""NVRTC compilation and driver-API launches through ctypes: the path weft's TypeScript runtime takes
(NVRTC → cubin → cuModuleLoadData → cuLaunchKernel), so the harness measures the same machine code.

Works beside torch: torch creates the primary context; modules load into whatever context is current.
"""
import ctypes
import ctypes.util
import glob
import os

SRC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'src', 'backends', 'cuda', 'kernel')


def _load(names, globs):
    for n in names:
        try:
            return ctypes.CDLL(n)
        except OSError:
            pass
    for g in globs:
        for p in sorted(glob.glob(g)):
            try:
                return ctypes.CDLL(p)
            except OSError:
                pass
    raise OSError(f'none of {names} or {globs} could be loaded')


_nvrtc = None
_cuda = None


def nvrtc():
    global _nvrtc
    if _nvrtc is None:
        env = os.environ.get('WEFT_NVRTC')
        _nvrtc = _load(([env] if env else []) + ['libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so'],
                       ['/usr/local/cuda*/targets/x86_64-linux/lib/libnvrtc.so.1*', '/usr/local/cuda*/lib64/libnvrtc.so.1*',
                        '/tmp/nvrtc/nvidia/cu13/lib/libnvrtc.so.13'])
    return _nvrtc


def cuda():
    global _cuda
    if _cuda is None:
        _cuda = _load(['libcuda.so.1'], [])
    return _cuda


def compile_source(src, options, name='attn.cu'):
    """NVRTC → (cubin bytes, log text). Raises with the log on failure."""
    lib = nvrtc()
    prog = ctypes.c_void_p()
    r = lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), name.encode(), 0, None, None)
    if r != 0:
        raise RuntimeError(f'nvrtcCreateProgram failed: {r}')
    opts = [o.encode() for o in options]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    res = lib.nvrtcCompileProgram(prog, len(opts), arr)
    n = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors='replace')
    if res != 0:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
        raise RuntimeError(f'NVRTC compile failed ({res}) with {options}:\n{text}')
    lib.nvrtcGetCUBINSize(prog, ctypes.byref(n))
    cubin = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetCUBIN(prog, cubin)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return cubin.raw, text


def variant_options(d=128, f16=False, m=1, stages=2, extra=()):
    return ['--gpu-architecture=sm_90a', '-std=c++17', '--ptxas-options=-v', f'-DWEFT_D={d}', f'-DWEFT_F16={int(f16)}',
            f'-DWEFT_M={m}', f'-DWEFT_STAGES={stages}', *extra]


def read_source(extra_files=()):
    with open(os.path.join(SRC_DIR, 'attn.cu')) as f:
        src = f.read()
    for p in extra_files:
        with open(p) as f:
            src += '\n' + f.read()
    return src


def check(r, what):
    if r != 0:
        s = ctypes.c_char_p()
        cuda().cuGetErrorString(r, ctypes.byref(s))
        raise RuntimeError(f'{what} failed: {r} {s.value.decode() if s.value else ""}')


class Module:
    def __init__(self, cubin):
        self.h = ctypes.c_void_p()
        check(cuda().cuModuleLoadData(ctypes.byref(self.h), cubin), 'cuModuleLoadData')
        self.funcs = {}

    def fn(self, name, smem=0):
        f = self.funcs.get(name)
        if f is None:
            f = ctypes.c_void_p()
            check(cuda().cuModuleGetFunction(ctypes.byref(f), self.h, name.encode()), f'cuModuleGetFunction {name}')
            self.funcs[name] = f
        if smem > 48 * 1024:
            check(cuda().cuFuncSetAttribute(f, 8, ctypes.c_int(smem)), f'cuFuncSetAttribute {name}')
        return f

    def attr(self, name, attr):
        v = ctypes.c_int()
        check(cuda().cuFuncGetAttribute(ctypes.byref(v), attr, self.fn(name)), 'cuFuncGetAttribute')
        return v.value


def P(x):
    """a device pointer argument (int address or torch tensor)"""
    return ctypes.c_uint64(x if isinstance(x, int) else x.data_ptr())


def I(x):
    return ctypes.c_int32(int(x))


def L(x):
    return ctypes.c_int64(int(x))


def F(x):
    return ctypes.c_float(float(x))


def launch(f, grid, block, args, smem=0, stream=0):
    ptrs = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in args])
    g = tuple(grid) + (1,) * (3 - len(grid))
    check(cuda().cuLaunchKernel(f, g[0], g[1], g[2], block, 1, 1, smem, ctypes.c_void_p(stream), ptrs, None),
          'cuLaunchKernel')
