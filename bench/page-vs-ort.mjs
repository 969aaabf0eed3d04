// The browser half of bench/page-vs-ort (which prepares everything and runs this): in one
// headless Chromium per run, times onnxruntime-web (bench/page-vs-ort.html: wasm on one
// thread, wasm on two threads, WebGPU) and then Vitrine's page (dist/) on the same timm models,
// and prints the figures and the ratios. Serves everything itself on 127.0.0.1 with the
// COOP/COEP headers that ORT's threads need (SharedArrayBuffer), and drives Chromium through
// chromedriver's W3C WebDriver, as tests/browser/webdriver.rs does.
//
//   node bench/page-vs-ort.mjs WORK_DIR
//
// WORK_DIR holds models.json (written by bench/page-vs-ort) and, for each model NAME,
// NAME.onnx, NAME.input.bin, NAME.logits.json and the imported pair NAME.json + NAME.bpk.
// Environment (bench/page-vs-ort sets them): DIST (the built page), ORT_DIST
// (onnxruntime-web's dist/), PHOTO (the image our page answers on), CHROMIUM, CHROMEDRIVER,
// RUNS (default 1), WARM (timed warm runs, default 10), WEBGPU_WARM (default 3), ORT_WEBGPU
// (models ORT's WebGPU runs on: all, none or a comma list; default all), ONLY (ort or page:
// one side alone).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.resolve(process.argv[2] || fail('usage: node bench/page-vs-ort.mjs WORK_DIR'));
const env = (name, fallback) => process.env[name] ?? fallback ?? fail(`set ${name}`);
const dist = path.resolve(env('DIST'));
const ortDist = path.resolve(env('ORT_DIST'));
const photo = path.resolve(env('PHOTO'));
const chromium = env('CHROMIUM', '/usr/bin/chromium');
const chromedriver = env('CHROMEDRIVER', '/usr/bin/chromedriver');
const runs = Number(env('RUNS', '1'));
const warm = Number(env('WARM', '10'));
const webgpuWarm = Number(env('WEBGPU_WARM', '3'));
const ortWebgpu = env('ORT_WEBGPU', 'all');
const only = env('ONLY', '');
if (!['', 'ort', 'page'].includes(only)) fail(`ONLY=${only}: say ort or page`);
const models = JSON.parse(fs.readFileSync(path.join(work, 'models.json'), 'utf8'));
const LOAD_TIMEOUT = 900_000;

function fail(message) {
  console.error(`page-vs-ort: ${message}`);
  process.exit(1);
}

// ---- a static server with cross-origin isolation ----

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.svg': 'image/svg+xml',
};

/// The file a URL path names: /ort/ is onnxruntime-web, /onnx/ the exported models,
/// /page-vs-ort.html the ORT page, anything else the built page.
function resolve(urlPath) {
  const parts = decodeURIComponent(urlPath).split('/').filter((p) => p);
  if (parts.some((p) => p === '..' || p.includes('\\'))) return null;
  let file;
  if (parts[0] === 'ort') file = path.join(ortDist, ...parts.slice(1));
  else if (parts[0] === 'onnx') file = path.join(work, ...parts.slice(1));
  else if (parts.join('/') === 'page-vs-ort.html') file = path.join(here, 'page-vs-ort.html');
  else file = path.join(dist, ...parts);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  return fs.existsSync(file) && fs.statSync(file).isFile() ? file : null;
}

function serve() {
  const server = http.createServer((req, res) => {
    const file = resolve(new URL(req.url, 'http://x').pathname);
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    const type = types[path.extname(file)] || 'application/octet-stream';
    res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': fs.statSync(file).size });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

// ---- just enough WebDriver ----

const freePort = () => new Promise((ok) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => ok(port));
  });
});
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function startDriver() {
  const port = await freePort();
  const child = spawn(chromedriver, [`--port=${port}`], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  const request = async (method, p, body) => {
    const r = await fetch(base + p, {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const v = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(`${method} ${p}: HTTP ${r.status}: ${v.value?.message ?? ''}`);
    return v.value;
  };
  for (let i = 0; ; i++) {
    try {
      if ((await request('GET', '/status')).ready) break;
    } catch { /* not up yet */ }
    if (i > 200) throw new Error(`${chromedriver} did not become ready within 20 s`);
    await sleep(100);
  }
  return { child, request };
}

async function openSession(driver, profile) {
  const args = [
    '--headless=new', '--no-sandbox', '--disable-gpu-sandbox', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic', '--disable-dev-shm-usage', '--enable-unsafe-webgpu',
    '--window-size=1280,1000', `--user-data-dir=${profile}`,
  ];
  const v = await driver.request('POST', '/session', {
    capabilities: { alwaysMatch: {
      browserName: 'chrome',
      'goog:chromeOptions': { binary: chromium, args },
      timeouts: { script: 600_000, pageLoad: 120_000 },
    } },
  });
  const id = v.sessionId;
  const cmd = (method, p, body) => driver.request(method, `/session/${id}${p}`, body);
  const s = {
    close: () => cmd('DELETE', ''),
    goto: (url) => cmd('POST', '/url', { url }),
    eval: (script, args = []) => cmd('POST', '/execute/sync', { script, args }),
    async waitFor(what, script, timeout = LOAD_TIMEOUT) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const v = await s.eval(script);
        if (v !== null && v !== false && v !== '' && v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeout / 1000} s waiting for ${what}`);
        await sleep(50);
      }
    },
    async upload(css, files) {
      const el = await cmd('POST', '/element', { using: 'css selector', value: css });
      await cmd('POST', `/element/${Object.values(el)[0]}/value`, { text: files.join('\n') });
    },
  };
  return s;
}

// ---- the two sides ----

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function ortRun(s, base, model, ep, threads, n) {
  await s.goto(`${base}/page-vs-ort.html?model=${model}&ep=${ep}&threads=${threads}&warm=${n}`);
  const b = await s.waitFor(`ORT ${ep} ${threads}t on ${model}`, 'return window.bench;');
  if (!b.ok) {
    console.log(`  ORT ${ep}, ${threads} thread(s): FAILED: ${b.error.split('\n')[0]}`);
    return b;
  }
  console.log(
    `  ORT ${ep}, ${threads} thread(s)${b.isolated ? ', isolated' : ''}: session ${b.create_ms.toFixed(0)} ms, ` +
      `first ${b.first_ms.toFixed(1)} ms, warm ${b.warm_ms.toFixed(1)} ms (median of ${b.runs.length}: ` +
      `${b.runs.map((r) => r.toFixed(0)).join(' ')}); logits within ${b.max_abs_diff.toExponential(1)} ` +
      `of PyTorch, top-5 ${b.same_top5 ? 'the same' : 'DIFFERENT'}`,
  );
  return b;
}

const STATE = `const v = window.vitrine; if (!v) return null;
  if (v.state() === 'error') return 'error: ' + v.error();
  if (v.state() === 'busy') return null;`;

/// Waits until the page is idle with a result newer than `after` for which `check` holds.
async function result(s, what, after, check) {
  const v = await s.waitFor(what, `${STATE}
    const p = JSON.parse(v.predictions() || 'null');
    return p && p.run > ${after} && (${check}) ? p : null;`);
  if (typeof v === 'string') throw new Error(`${what}: ${v}`);
  return v;
}

/// Opens the page, gives it the photo, then loads `m` from disk (as "Load a model from disk"
/// does): its first answer, the page's own background timing (Flex, then WebGPU), then `warm`
/// runs on Flex, each asked for by choosing the CPU in the backend select.
async function ourPage(s, base, m) {
  const started = Date.now();
  await s.goto(`${base}/`);
  let p = await result(s, 'the page\'s first result', 0, 'true');
  await s.waitFor('the default model\'s timing', 'const t = JSON.parse(window.vitrine.timings()); return t.timed_ms ? t : null;');
  const opened = (Date.now() - started) / 1000;
  await s.upload('#file-input', [photo]);
  p = await result(s, 'the photo', p.run, `p.image === ${JSON.stringify(path.basename(photo))}`);
  const t0 = Date.now();
  await s.upload('#model-files', [path.join(work, `${m.name}.json`), path.join(work, `${m.name}.bpk`)]);
  p = await result(s, `${m.name}'s first answer`, p.run, `p.model === ${JSON.stringify(m.name)}`);
  const load = (Date.now() - t0) / 1000;
  const first = { ms: p.ms, backend: p.backend };
  const t = await s.waitFor(`${m.name}'s background timing`,
    'const t = JSON.parse(window.vitrine.timings()); return !t.timing && t.cpu ? t : null;');
  const ms = [];
  for (let i = 0; i < warm; i++) {
    await s.eval(`const sel = document.getElementById('backend-select');
      sel.value = 'cpu'; sel.dispatchEvent(new Event('change'));`);
    p = await result(s, `${m.name} on Flex`, p.run, `p.backend === 'cpu' && p.model === ${JSON.stringify(m.name)}`);
    ms.push(p.ms);
  }
  const o = {
    load_s: load, first_ms: first.ms, first_backend: first.backend, warm_ms: median(ms), runs: ms,
    timing_cpu_first: t.cpu_first, timing_cpu: t.cpu, webgpu_first: t.webgpu_first, webgpu: t.webgpu,
  };
  console.log(
    `  our page (default model answered and timed ${opened.toFixed(1)} s after opening): loaded from disk ` +
      `with its first answer in ${load.toFixed(2)} s; first ${o.first_ms.toFixed(1)} ms (${o.first_backend}), ` +
      `warm ${o.warm_ms.toFixed(1)} ms on Flex (median of ${ms.length}: ${ms.map((r) => r.toFixed(0)).join(' ')}); ` +
      `its background timing: Flex ${o.timing_cpu_first?.toFixed(0)} then ${o.timing_cpu?.toFixed(0)} ms, WebGPU ` +
      `${o.webgpu_first ? (o.webgpu_first / 1000).toFixed(1) + ' s then ' + (o.webgpu / 1000).toFixed(1) + ' s' : 'none'}`,
  );
  return o;
}

// ---- main ----

const server = await serve();
const base = `http://127.0.0.1:${server.address().port}`;
const driver = await startDriver();
const all = [];
let failed = false;
let open = null;
// Interrupted: quit Chromium and chromedriver rather than leave them running.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await open?.close().catch(() => {});
    driver.child.kill();
    process.exit(130);
  });
}
try {
  for (let run = 1; run <= runs; run++) {
    console.log(`run ${run} of ${runs}`);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'page-vs-ort-'));
    const s = await openSession(driver, profile);
    open = s;
    const record = { run, ort: {}, ours: {} };
    const load = () => `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
    try {
      // Each model's wasm figures and ours close together in time (the machine is shared);
      // the long WebGPU runs after them.
      for (const m of models) {
        console.log(` ${m.name} (${load()}):`);
        if (only !== 'page') {
          record.ort[m.name] = {
            wasm1: await ortRun(s, base, m.name, 'wasm', 1, warm),
            wasm2: await ortRun(s, base, m.name, 'wasm', 2, warm),
          };
          failed ||= !record.ort[m.name].wasm1.ok || !record.ort[m.name].wasm2.ok;
        }
        if (only !== 'ort') record.ours[m.name] = await ourPage(s, base, m);
      }
      for (const m of only === 'page' ? [] : models) {
        if (ortWebgpu !== 'all' && !ortWebgpu.split(',').includes(m.name)) continue;
        console.log(` ${m.name} (${load()}):`);
        record.ort[m.name].webgpu = await ortRun(s, base, m.name, 'webgpu', 1, webgpuWarm);
      }
    } finally {
      await s.close().catch(() => {});
      open = null;
      fs.rmSync(profile, { recursive: true, force: true });
    }
    all.push(record);
    fs.writeFileSync(path.join(work, 'results.json'), JSON.stringify(all, null, 1));
  }
} finally {
  driver.child.kill();
  server.close();
}

// The summary: one line per model and run, and the ranges over the runs.
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const range = (xs, d = 0) => {
  const v = xs.filter((x) => Number.isFinite(x));
  if (!v.length) return '–';
  const [lo, hi] = [Math.min(...v), Math.max(...v)];
  return lo.toFixed(d) === hi.toFixed(d) ? lo.toFixed(d) : `${lo.toFixed(d)}–${hi.toFixed(d)}`;
};
console.log('\nwarm ms (first ms), ours on Flex against ORT-web wasm; ratio = ours / ORT');
for (const m of models) {
  const rows = all.map((r) => {
    const o = r.ours?.[m.name] ?? {};
    const { wasm1 = {}, wasm2 = {}, webgpu } = r.ort[m.name] ?? {};
    return {
      ours: o.warm_ms, ours_first: o.first_ms, load: o.load_s,
      one: wasm1.warm_ms, one_first: wasm1.first_ms,
      two: wasm2.warm_ms, two_first: wasm2.first_ms,
      gpu: webgpu?.warm_ms, gpu_first: webgpu?.first_ms,
      ours_gpu: o.webgpu, ours_gpu_first: o.webgpu_first,
      r1: o.warm_ms / wasm1.warm_ms, r2: o.warm_ms / wasm2.warm_ms,
    };
  });
  for (const [i, r] of rows.entries()) {
    console.log(
      `${m.name} run ${i + 1}: ours ${f(r.ours)} (${f(r.ours_first)}); ORT 1 thread ${f(r.one)} ` +
        `(${f(r.one_first)}), 2 threads ${f(r.two)} (${f(r.two_first)}); ours/ORT ${f(r.r1, 2)} and ` +
        `${f(r.r2, 2)}; WebGPU: ORT ${f(r.gpu)} (${f(r.gpu_first)}), ours ${f(r.ours_gpu)} (${f(r.ours_gpu_first)})`,
    );
  }
  const col = (k, d) => range(rows.map((r) => r[k]), d);
  console.log(
    `${m.name} over ${rows.length} run(s): ours warm ${col('ours')} ms, first ${col('ours_first')} ms, ` +
      `loaded with its first answer in ${col('load', 2)} s; ORT one thread ${col('one')} ms (first ` +
      `${col('one_first')}), two threads ${col('two')} ms (first ${col('two_first')}); ours/ORT ` +
      `${col('r1', 2)} (one thread), ${col('r2', 2)} (two); WebGPU warm: ORT ${col('gpu')} ms, ours ${col('ours_gpu')} ms`,
  );
}
console.log(`results: ${path.join(work, 'results.json')}`);
if (failed) fail('ORT\'s wasm backend failed (above)');
