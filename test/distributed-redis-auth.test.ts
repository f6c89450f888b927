import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ffmpeg, frameTimes, workDir } from './helpers.js';
import { freePort, isolateHome, leftovers, RedisServer, submit, WorkerProcess } from './distributed-helpers.js';

isolateHome('distributed-redis-auth');
const dir = workDir('distributed-redis-auth');
const clip = join(dir, 'clip.mp4');
ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=4', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', clip]);
const encodeArgs = (url: string, out: string) => [clip, '-o', out, '--redis', url, '--roi', 'none', '--chunk-seconds', '2', '--preset', 'ultrafast'];

/** Starts a worker, encodes the clip through it, checks the output; stops the worker. */
async function encodeThrough(url: string, out: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const worker = new WorkerProcess(url, [], env);
  try {
    await worker.ready();
    const r = await submit(encodeArgs(url, out), undefined, env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(frameTimes(out).length, 100);
    assert.ok(worker.events.filter((e) => e.event === 'done' && e.kind === 'chunk').length >= 2, 'chunks ran on the worker');
    for (const text of [r.stdout, r.stderr, worker.stdout, worker.stderr]) assert.ok(!text.includes('s3cr3t-pass'), 'the Redis password was printed');
  } finally {
    await worker.stop();
  }
}

/** A worker and a submitter that cannot connect: each exits 1 with exactly `expected` as its one line, quickly. */
async function refusedBoth(url: string, expected: RegExp, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const started = Date.now();
  const worker = new WorkerProcess(url, [], env);
  assert.equal(await worker.exited, 1, worker.stderr);
  const lines = worker.stderr.trim().split('\n');
  assert.equal(lines.length, 1, worker.stderr);
  assert.match(lines[0]!, expected);
  const out = join(dir, 'refused.mp4');
  const r = await submit(encodeArgs(url, out), undefined, env);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr.trim(), expected);
  assert.equal(existsSync(out), false);
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms: a retry loop?`);
  for (const text of [r.stdout, r.stderr, worker.stdout, worker.stderr]) assert.ok(!text.includes('s3cr3t-pass') && !text.includes('wrong-pass'), 'a password was printed');
}

describe('Redis with a password (requirepass and an ACL user)', { timeout: 180_000 }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = new RedisServer(await freePort(), ['--requirepass', 's3cr3t-pass', '--user', 'encoder', 'on', '>s3cr3t-pass', '~*', '&*', '+@all']);
    await redis.start();
  });
  after(() => redis.stop());
  const at = (auth: string) => `redis://${auth}127.0.0.1:${redis.port}`;

  it('encodes with redis://:password@host and redis://user:password@host', async () => {
    await encodeThrough(at(':s3cr3t-pass@'), join(dir, 'password.mp4'));
    await encodeThrough(at('encoder:s3cr3t-pass@'), join(dir, 'user.mp4'));
    assert.deepEqual(leftovers(dir), []);
  });

  it('a wrong password or none is one clear line, not a retry loop', async () => {
    await refusedBoth(at(':wrong-pass@'), /^roi-encode: redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ refused the user name or password \(WRONGPASS\); check them in the URL, redis:\/\/user:password@host:port$/);
    await refusedBoth(at('encoder:wrong-pass@'), /^roi-encode: redis at redis:\/\/encoder:\*\*\*@127\.0\.0\.1:\d+ refused the user name or password/);
    await refusedBoth(at(''), /^roi-encode: redis at redis:\/\/127\.0\.0\.1:\d+ needs a password: give it in the URL, redis:\/\/user:password@host:port$/);
  });
});

describe('Redis over TLS (rediss://, certificates made with openssl)', { timeout: 180_000 }, () => {
  let redis: RedisServer;
  const tls = workDir('distributed-redis-tls');
  const ca = join(tls, 'ca.crt');
  before(async () => {
    const sh = (args: string[]) => execFileSync('openssl', args, { cwd: tls, stdio: 'ignore' });
    sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=roi-encoder test CA']);
    sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
    writeFileSync(join(tls, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    sh(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf']);
    // Debian's redis-server 7.0.15 is built with TLS. The TLS port is the test's port; the later
    // --port 0 turns the plain port off (redis-server takes the last value). A password on too.
    const port = await freePort();
    redis = new RedisServer(port, ['--tls-port', String(port), '--port', '0', '--tls-cert-file', join(tls, 'server.crt'), '--tls-key-file', join(tls, 'server.key'), '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no', '--requirepass', 's3cr3t-pass'], 'rediss');
    await redis.start();
  });
  after(() => redis.stop());

  it('encodes over rediss:// with a password, trusting the CA through NODE_EXTRA_CA_CERTS', async () => {
    await encodeThrough(`rediss://:s3cr3t-pass@127.0.0.1:${redis.port}`, join(dir, 'tls.mp4'), { NODE_EXTRA_CA_CERTS: ca });
  });

  it('an untrusted certificate, or redis:// to a TLS port, is one clear line', async () => {
    await refusedBoth(`rediss://:s3cr3t-pass@127.0.0.1:${redis.port}`, /^roi-encode: cannot verify the TLS certificate of redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(.+\); set NODE_EXTRA_CA_CERTS to the file of the CA that signed it$/);
    await refusedBoth(`redis://:s3cr3t-pass@127.0.0.1:${redis.port}`, /^roi-encode: cannot reach redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: .*ECONNRESET.*\(a TLS port\? use rediss:\/\/\)$/, { NODE_EXTRA_CA_CERTS: ca });
  });
});
