// weft's ranks under the cluster's own launchers: the environment each gives (torchrun, srun,
// mpirun, weft launch) read into one DistEnv, and whole CPU runs started the way each launcher
// starts them — processes with its variables, and a real mpirun where Open MPI is installed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { describe, it } from 'node:test';
import { detectLaunch, firstHost, LaunchEnvError, tasksPerNode } from '../../src/launch/cluster.js';
import { UserError } from '../../src/errors.js';
import { WEFT } from '../helpers/cli.js';

describe('launch environments', () => {
  it("torchrun: RANK/WORLD_SIZE/LOCAL_RANK/MASTER_*; weft's store on MASTER_PORT + 1, hosted by rank 0", () => {
    const d = detectLaunch({
      RANK: '3',
      WORLD_SIZE: '8',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      GROUP_RANK: '1',
      MASTER_ADDR: 'node7',
      MASTER_PORT: '29500',
      TORCHELASTIC_RUN_ID: 'job1',
    })!;
    assert.deepEqual(
      { ...d, token: undefined },
      {
        rank: 3,
        worldSize: 8,
        localRank: 1,
        localWorldSize: 2,
        nodeRank: 1,
        masterAddr: 'node7',
        masterPort: 29501,
        token: undefined,
        launcher: 'torchrun',
        hostsStore: true,
      },
    );
    assert.match(d.token, /job1/);
    assert.equal(
      detectLaunch({ RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '29500', WEFT_STORE_PORT: '4000' })!.masterPort,
      4000,
    );
    assert.throws(() => detectLaunch({ RANK: '0', WORLD_SIZE: '2' }), /MASTER_PORT is unset/);
  });

  it('weft launch: the same variables plus WEFT_STORE_TOKEN; the launcher hosts the store on MASTER_PORT', () => {
    const d = detectLaunch({
      RANK: '1',
      WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: '5000',
      WEFT_STORE_TOKEN: 'secret',
    })!;
    assert.deepEqual(
      [d.launcher, d.hostsStore, d.masterPort, d.token, d.localRank, d.localWorldSize],
      ['weft', false, 5000, 'secret', 1, 2],
    );
  });

  it("srun: SLURM_PROCID/NTASKS/LOCALID/NODEID, the first host of the step's node list, a port from the job and step", () => {
    const env = {
      SLURM_PROCID: '5',
      SLURM_NTASKS: '6',
      SLURM_LOCALID: '1',
      SLURM_NODEID: '2',
      SLURM_STEP_ID: '0',
      SLURM_JOB_ID: '4242',
      SLURM_STEP_NODELIST: 'gpu[07-09],cpu3',
      SLURM_JOB_NODELIST: 'other[1-9]',
      SLURM_STEP_TASKS_PER_NODE: '2(x3)',
    };
    const d = detectLaunch(env)!;
    assert.deepEqual(
      [d.rank, d.worldSize, d.localRank, d.localWorldSize, d.nodeRank, d.masterAddr, d.launcher, d.hostsStore],
      [5, 6, 1, 2, 2, 'gpu07', 'slurm', true],
    );
    assert.ok(d.masterPort >= 20000 && d.masterPort < 40000);
    assert.equal(
      detectLaunch({ ...env, SLURM_STEP_ID: '1' })!.masterPort === d.masterPort,
      false,
      'another step, another port',
    );
    assert.equal(detectLaunch({ ...env, MASTER_ADDR: '10.1.2.3', MASTER_PORT: '6000' })!.masterAddr, '10.1.2.3');
    assert.equal(detectLaunch({ ...env, MASTER_PORT: '6000' })!.masterPort, 6000);
    // a batch script is not a step: its SLURM_PROCID=0 and SLURM_NTASKS must not start a job of one rank waiting for the rest
    assert.equal(detectLaunch({ SLURM_PROCID: '0', SLURM_NTASKS: '4', SLURM_JOB_ID: '1' }), undefined);
    assert.deepEqual(['n1', 'n[1-3]', 'n[04,07-09]x', 'a,b', 'pre[9]'].map(firstHost), [
      'n1',
      'n1',
      'n04',
      'a',
      'pre9',
    ]);
    assert.deepEqual(
      [0, 2, 3].map((n) => tasksPerNode('2(x3),1', n)),
      [2, 2, 1],
    );
  });

  it('mpirun: OMPI_COMM_WORLD_*; one node meets on 127.0.0.1, several need MASTER_ADDR', () => {
    const env = {
      OMPI_COMM_WORLD_RANK: '1',
      OMPI_COMM_WORLD_SIZE: '4',
      OMPI_COMM_WORLD_LOCAL_RANK: '1',
      OMPI_COMM_WORLD_LOCAL_SIZE: '4',
      OMPI_MCA_ess_base_jobid: '77',
    };
    const d = detectLaunch(env)!;
    assert.deepEqual(
      [d.rank, d.worldSize, d.localRank, d.localWorldSize, d.masterAddr, d.launcher],
      [1, 4, 1, 4, '127.0.0.1', 'mpirun'],
    );
    assert.throws(() => detectLaunch({ ...env, OMPI_COMM_WORLD_LOCAL_SIZE: '2' }), /set MASTER_ADDR/);
  });

  it('nothing launched is undefined; bad values are user errors naming the variable', () => {
    assert.equal(detectLaunch({}), undefined);
    assert.throws(
      () => detectLaunch({ RANK: 'x', WORLD_SIZE: '2', MASTER_PORT: '1' }),
      (e: unknown) => e instanceof LaunchEnvError && e instanceof UserError && /RANK=x/.test(e.message),
    );
    assert.throws(
      () => detectLaunch({ RANK: '2', WORLD_SIZE: '2', MASTER_PORT: '1' }),
      /rank 2 is not below the world size 2/,
    );
  });
});

const RUN = [
  'run',
  '--backend',
  'cpu',
  '--world',
  '2',
  '--seq',
  '48',
  '--heads',
  '4',
  '--kv-heads',
  '2',
  '--dim',
  '8',
  '--check',
  '--json',
];

/** Start one process per rank with `envOf(rank)` on top of ours; resolve with each one's output. */
function ranks(
  n: number,
  args: string[],
  envOf: (r: number) => Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }[]> {
  return Promise.all(
    Array.from(
      { length: n },
      (_, r) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const env = { ...process.env };
          for (const k of Object.keys(env))
            if (/^(RANK|WORLD_SIZE|MASTER_|SLURM_|OMPI_|WEFT_STORE)/.test(k)) delete env[k];
          const c = spawn(process.execPath, [WEFT, ...args], {
            env: { ...env, ...envOf(r) },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '',
            stderr = '';
          c.stdout.on('data', (d: Buffer) => {
            stdout += d;
          });
          c.stderr.on('data', (d: Buffer) => {
            stderr += d;
          });
          const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
          c.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
          });
        }),
    ),
  );
}

function checkedRun(out: { code: number | null; stdout: string; stderr: string }[], strategy: string): void {
  out.forEach((o, r) => assert.equal(o.code, 0, `rank ${r}: ${o.stderr}`));
  assert.equal(out[1]!.stdout, '', 'only rank 0 reports');
  const j = JSON.parse(out[0]!.stdout) as {
    layout: { strategy: string; world: number };
    check: { ok: boolean; errors: Record<string, number> };
    stats: { perRank: unknown[] };
  };
  assert.equal(j.layout.strategy, strategy);
  assert.equal(j.stats.perRank.length, 2);
  assert.ok(j.check.ok, JSON.stringify(j.check));
}

function isFree(port: number): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

describe('CPU ranks as processes under each launcher', () => {
  it("torchrun --no-python: rank 0 hosts weft's store beside torchrun's, which keeps MASTER_PORT", async () => {
    // torchrun's own store holds MASTER_PORT for the whole job: stand one in, on a port whose next one is free
    let torchStore: net.Server | undefined,
      port = 0;
    for (let i = 0; i < 20 && !torchStore; i++) {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      port = (s.address() as net.AddressInfo).port;
      if (await isFree(port + 1)) torchStore = s;
      else await new Promise((r) => s.close(r));
    }
    assert.ok(torchStore, 'no port pair free');
    try {
      const out = await ranks(2, [...RUN, '--strategy', 'ring'], (r) => ({
        RANK: String(r),
        WORLD_SIZE: '2',
        LOCAL_RANK: String(r),
        LOCAL_WORLD_SIZE: '2',
        GROUP_RANK: '0',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        TORCHELASTIC_RUN_ID: 'test',
      }));
      checkedRun(out, 'ring');
    } finally {
      await new Promise((r) => torchStore!.close(r));
    }
  });

  it("srun: SLURM_* only, the store on the first host of the step's node list", async () => {
    const port = await freePort();
    const out = await ranks(2, [...RUN, '--strategy', 'ulysses'], (r) => ({
      SLURM_PROCID: String(r),
      SLURM_NTASKS: '2',
      SLURM_LOCALID: String(r),
      SLURM_NODEID: '0',
      SLURM_JOB_ID: '99',
      SLURM_STEP_ID: '0',
      SLURM_STEP_NODELIST: '127.0.0.[1-4]',
      SLURM_STEP_TASKS_PER_NODE: '2',
      WEFT_STORE_PORT: String(port),
    }));
    checkedRun(out, 'ulysses');
  });

  const mpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  const skip = mpirun.status === 0 ? false : 'mpirun not installed (Debian openmpi-bin; .ci/run installs it)';
  it('a real mpirun (Open MPI) starts the ranks', { skip }, () => {
    const r = spawnSync(
      'mpirun',
      [
        '--allow-run-as-root',
        '--oversubscribe',
        '--mca',
        'oob_tcp_if_include',
        'lo',
        '--mca',
        'btl_tcp_if_include',
        'lo',
        '-n',
        '2',
        process.execPath,
        WEFT,
        ...RUN,
        '--strategy',
        'allgather',
      ],
      { encoding: 'utf8', timeout: 90_000, env: { ...process.env, OMPI_MCA_plm_rsh_agent: '' } },
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout.trim()) as { layout: { strategy: string }; check: { ok: boolean } };
    assert.equal(j.layout.strategy, 'allgather');
    assert.ok(j.check.ok);
  });
});
