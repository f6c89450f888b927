import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ffmpeg, ffprobeJson, ROOT, SAMPLE, workDir } from './helpers.js';

/*
 * The package as a library user gets it: `npm pack`, then an offline install of the tarball into a
 * fresh app, then analyze and encode through the public API with plain node (no tsx, no src/).
 */
const dir = workDir('package');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  bin: Record<string, string>;
  engines: Record<string, string>;
  dependencies: Record<string, string>;
};

/**
 * The environment of a user's shell: none of the npm_* variables `npm test` sets, and none of the
 * variables that switch onnxruntime's telemetry off (CI=true in CI does), so that the TMPDIR check
 * can fail.
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || ['CI', 'ORT_DISABLE_TELEMETRY', 'ORT_RUNNING_UNIT_TESTS', 'GITHUB_ACTIONS', 'TF_BUILD'].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

type LockEntry = { dev?: boolean; devOptional?: boolean; optional?: boolean; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; peerDependencies?: Record<string, string> };

/**
 * A lockfile for an app that depends on the tarball alone: the tarball's entry plus the runtime
 * closure of this repository's lockfile (the versions CI tested), found by Node's resolution rule.
 * With it `npm ci --offline` needs nothing the repository's own `npm ci` did not put in npm's cache.
 */
function appLockfile(tarball: string, spec: string): object {
  const all = (JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }).packages;
  const resolve = (from: string, name: string): string | undefined => {
    for (let base = from; ; ) {
      const key = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
      if (all[key]) return key;
      if (!base) return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const keep = new Set<string>();
  const visit = (from: string, deps: Record<string, string> | undefined) => {
    for (const name of Object.keys(deps ?? {})) {
      const key = resolve(from, name);
      if (!key || keep.has(key)) continue;
      keep.add(key);
      const e = all[key]!;
      visit(key, { ...e.dependencies, ...e.optionalDependencies, ...e.peerDependencies });
    }
  };
  visit('', pkg.dependencies);
  const packages: Record<string, object> = {
    '': { name: 'app', version: '1.0.0', dependencies: { [pkg.name]: spec } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: spec,
      integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const key of [...keep].sort()) {
    const { dev: _dev, devOptional, ...entry } = all[key]!;
    packages[key] = devOptional ? { ...entry, optional: true } : entry;
  }
  return { name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

describe('the packed package, as a library user gets it', () => {
  let tarball: string;
  let files: string[];
  let packed: { scripts?: Record<string, string> };

  before(() => {
    // prepack copies the models and builds dist/, as `npm publish` would.
    const r = spawnSync('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, encoding: 'utf8', env: userEnv() });
    assert.equal(r.status, 0, r.stderr);
    tarball = join(dir, `${pkg.name}-${pkg.version}.tgz`);
    files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    packed = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as typeof packed;
  });

  it('ships the code, the models and the licences, and nothing that points at files it leaves out', () => {
    for (const f of ['LICENSE', 'NOTICE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'models/face_detection_back_256x256_barracuda.onnx', 'models/face_detection_front_128x128_barracuda.onnx', 'models/facemesh-detection-full.json', 'models/facemesh-detection-full.bin', 'models/saliency-ft.onnx']) {
      assert.ok(files.includes(`package/${f}`), `${f} is in the tarball`);
    }
    assert.ok(!files.some((f) => f.startsWith('package/src/') || f.startsWith('package/scripts/') || f.startsWith('package/test/')), 'no src/, scripts/ or test/');
    // npm runs these for whoever installs the package; prepack runs only where the package is packed.
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(packed.scripts?.[s], undefined, `no ${s} script`);
    const notice = readFileSync(join(ROOT, 'NOTICE'), 'utf8');
    for (const f of files.filter((x) => x.startsWith('package/models/'))) assert.ok(notice.includes(basename(f)), `NOTICE names ${basename(f)}`);
    assert.match(notice, /Apache License\s+Version 2\.0/);
  });

  it('source maps carry their sources inline, since src/ is not shipped', () => {
    const maps = files.filter((f) => f.endsWith('.js.map'));
    assert.ok(maps.length > 10, `${maps.length} maps`);
    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
    for (const f of maps) {
      const m = JSON.parse(readFileSync(join(unpacked, f), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      assert.equal(m.sourcesContent?.length, m.sources.length, f);
      assert.ok(m.sourcesContent!.every((c) => typeof c === 'string' && c.length > 0), f);
    }
  });

  it('installs offline into a fresh app with ONNXRUNTIME_NODE_INSTALL=skip, and analyze and encode run through the public API, leaving TMPDIR as they found it', () => {
    const app = join(dir, 'app');
    mkdirSync(app, { recursive: true });
    copyFileSync(tarball, join(app, basename(tarball)));
    const spec = `file:${basename(tarball)}`;
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module', dependencies: { [pkg.name]: spec } }, null, 2)}\n`);
    writeFileSync(join(app, 'package-lock.json'), `${JSON.stringify(appLockfile(tarball, spec), null, 2)}\n`);
    const install = spawnSync('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: app, encoding: 'utf8', env: userEnv({ ONNXRUNTIME_NODE_INSTALL: 'skip' }) });
    assert.equal(install.status, 0, `npm ci --offline failed (npm's cache is filled by the repository's npm ci):\n${install.stderr.slice(-2000)}`);
    assert.doesNotMatch(install.stderr, /Unknown (project|user|cli) config "onnxruntime/);

    const clip = join(app, 'clip.mp4');
    ffmpeg(['-i', SAMPLE, '-t', '1', '-c', 'copy', clip]);
    writeFileSync(join(app, 'run.mjs'), [
      "import { analyze, encode, VERSION } from 'roi-encoder';",
      "const plan = await analyze('clip.mp4', { sampleFps: 2 });",
      "const r = await encode('clip.mp4', 'out.mp4', { plan, preset: 'veryfast', crf: 32 });",
      'console.log(JSON.stringify({ version: VERSION, faces: plan.detections.reduce((n, d) => n + d.faces.length, 0), frames: r.frames, bytes: r.bytes }));',
      '',
    ].join('\n'));
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const r = spawnSync(process.execPath, ['run.mjs'], { cwd: app, encoding: 'utf8', env: userEnv({ TMPDIR: tmp }) });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { version: string; faces: number; frames: number; bytes: number };
    assert.equal(out.version, pkg.version);
    assert.ok(out.faces > 0, 'the shipped models find the face');
    const streams = (ffprobeJson(join(app, 'out.mp4'), ['-show_streams', '-count_packets']) as { streams: { codec_name: string; nb_read_packets: string }[] }).streams;
    assert.equal(streams[0]?.codec_name, 'hevc');
    assert.equal(Number(streams[0]?.nb_read_packets), out.frames);
    // onnxruntime 1.30's telemetry left mat-debug-<pid>.log and .ses here on every run.
    assert.deepEqual(readdirSync(tmp), [], 'TMPDIR is left as it was found');
  });
});

describe('a run leaves TMPDIR as it found it', () => {
  it('analysis from the source tree (all three models loaded) writes nothing to TMPDIR', () => {
    const tmp = join(dir, 'tmp-src');
    mkdirSync(tmp);
    const script = "import { analyze } from './src/index.ts'; const p = await analyze(process.argv[1], { roi: 'faces,saliency', sampleFps: 2 }); console.log(p.detections.length);";
    const clip = join(dir, 'src-clip.mp4');
    ffmpeg(['-i', SAMPLE, '-t', '1', '-c', 'copy', clip]);
    // TSX_DISABLE_CACHE: tsx would otherwise keep its own cache in TMPDIR.
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, clip], { cwd: ROOT, encoding: 'utf8', env: userEnv({ TMPDIR: tmp, TSX_DISABLE_CACHE: '1' }) });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Number(r.stdout) > 0);
    assert.deepEqual(readdirSync(tmp), []);
  });
});
