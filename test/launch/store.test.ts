import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { StoreClient, StoreError, StoreServer } from '../../src/launch/store.js';

let server: StoreServer;
const token = 'secret-token';
const connect = (t = token) =>
  StoreClient.connect({ host: '127.0.0.1', port: server.port, token: t, connectTimeoutMs: 2000, timeoutMs: 2000 });

before(async () => {
  server = await StoreServer.listen('127.0.0.1', 0, token);
});
after(async () => {
  await server.close();
});

test('set/get round-trips binary values; get waits for a later set', async () => {
  const a = await connect(),
    b = await connect();
  const id = new Uint8Array(128).map((_, i) => (i * 37) & 255);
  await a.set('uid', id);
  assert.deepEqual(new Uint8Array(await b.get('uid')), id);
  const pending = b.getString('later');
  await new Promise((r) => setTimeout(r, 50));
  await a.set('later', 'value');
  assert.equal(await pending, 'value');
  assert.equal(await a.check(['uid', 'later']), true);
  assert.equal(await a.check(['uid', 'missing']), false);
  assert.equal(await a.delete('uid'), true);
  assert.equal(await a.check(['uid']), false);
  a.close();
  b.close();
});

test('add is atomic across clients, and barrier releases all ranks together', async () => {
  const clients = await Promise.all([0, 1, 2, 3].map(() => connect()));
  const got = await Promise.all(clients.flatMap((c) => [c.add('counter', 1), c.add('counter', 2)]));
  assert.equal(Math.max(...got), 12);
  assert.equal(new Set(got).size, 8, 'every add saw a distinct value');
  await Promise.all(clients.map((c) => c.barrier('b1', 4)));
  await assert.rejects(clients[0]!.barrier('b2', 5, 200), /timed out after 0\.2 s waiting for barrier\/b2\/done/);
  for (const c of clients) c.close();
});

test('get and wait time out with the missing keys named', async () => {
  const c = await connect();
  await assert.rejects(
    c.get('never', 100),
    (e: Error) => e instanceof StoreError && /timed out after 0\.1 s waiting for never/.test(e.message),
  );
  await c.set('k1', 'x');
  await assert.rejects(c.wait(['k1', 'k2'], 100), /waiting for k2$/);
  c.close();
});

test('a client with the wrong token is turned away', async () => {
  await assert.rejects(connect('guess'), (e: Error) => e instanceof StoreError && /wrong token/.test(e.message));
});

test('connecting retries until the server is up, then gives up with the address', async () => {
  await assert.rejects(
    StoreClient.connect({ host: '127.0.0.1', port: 1, token, connectTimeoutMs: 300 }),
    /cannot reach the rendezvous store at 127\.0\.0\.1:1/,
  );
});
