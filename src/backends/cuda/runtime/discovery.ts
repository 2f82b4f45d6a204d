// Where the GPU libraries are: an environment override first, then the dynamic loader's own
// search by soname (LD_LIBRARY_PATH, the ldconfig cache), then paths where CUDA 13 installs put
// them. A failure names everything that was tried and why each attempt failed.

export interface LibrarySpec {
  /** What the library is, for messages. */
  what: string;
  /** Environment variable holding an explicit path; when set, nothing else is tried. */
  env: string;
  sonames: readonly string[];
  paths: readonly string[];
}

const CUDA_LIB_DIRS = [
  '/usr/local/cuda-13.0/targets/x86_64-linux/lib',
  '/usr/local/cuda/targets/x86_64-linux/lib',
  '/usr/local/cuda/lib64',
];

export const LIBCUDA: LibrarySpec = {
  what: 'CUDA driver',
  env: 'WEFT_LIBCUDA',
  sonames: ['libcuda.so.1'],
  paths: [
    '/usr/lib/x86_64-linux-gnu/libcuda.so.1',
    '/usr/local/nvidia/lib64/libcuda.so.1',
    '/usr/lib64/libcuda.so.1',
    '/usr/lib/wsl/lib/libcuda.so.1',
  ],
};

export const LIBNVRTC: LibrarySpec = {
  what: 'NVRTC',
  env: 'WEFT_LIBNVRTC',
  sonames: ['libnvrtc.so.13', 'libnvrtc.so.12'],
  paths: CUDA_LIB_DIRS.flatMap((d) => [`${d}/libnvrtc.so.13`, `${d}/libnvrtc.so.12`]),
};

export const LIBNCCL: LibrarySpec = {
  what: 'NCCL',
  env: 'WEFT_LIBNCCL',
  sonames: ['libnccl.so.2'],
  paths: ['/usr/lib/x86_64-linux-gnu/libnccl.so.2', '/usr/local/cuda/lib64/libnccl.so.2', '/usr/lib64/libnccl.so.2'],
};

/** Directories searched for CUDA's headers (cuda_fp16.h, cuda_bf16.h) for NVRTC; WEFT_CUDA_INCLUDE overrides. */
export const CUDA_INCLUDE_DIRS = [
  '/usr/local/cuda-13.0/targets/x86_64-linux/include',
  '/usr/local/cuda/targets/x86_64-linux/include',
  '/usr/local/cuda/include',
];

export class LibraryNotFound extends Error {
  constructor(
    readonly spec: LibrarySpec,
    readonly attempts: readonly string[],
  ) {
    super(`${spec.what} library not found (tried ${attempts.join('; ')}); set ${spec.env} to its path`);
    this.name = 'LibraryNotFound';
  }
}

function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // koffi's message starts with a generic prefix; the dlopen reason after it is what helps
  return (
    m
      .replace(/^Failed to load shared library:\s*/i, '')
      .split('\n')[0]!
      .trim() || 'failed to load'
  );
}

/**
 * Open the first candidate that loads. `open` is the loader (koffi.load in production, a fake
 * in tests); it throws when a candidate cannot be loaded.
 */
export function openLibrary<T>(
  spec: LibrarySpec,
  open: (path: string) => T,
  env: Readonly<Record<string, string | undefined>> = process.env,
): { handle: T; path: string } {
  const override = env[spec.env];
  if (override) {
    try {
      return { handle: open(override), path: override };
    } catch (e) {
      throw new LibraryNotFound(spec, [`${spec.env}=${override}: ${reason(e)}`]);
    }
  }
  const attempts: string[] = [];
  for (const candidate of [...spec.sonames, ...spec.paths]) {
    try {
      return { handle: open(candidate), path: candidate };
    } catch (e) {
      attempts.push(`${candidate}${candidate.includes('/') ? '' : ' by name'}: ${reason(e)}`);
    }
  }
  throw new LibraryNotFound(spec, attempts);
}
