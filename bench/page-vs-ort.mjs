// The browser half of bench/page-vs-ort (which prepares everything and runs this). Each run
// opens a headless Chromium without WebGPU and times, on the same timm models and for each
// thread count, onnxruntime-web's wasm backend (bench/page-vs-ort.html) and Vitrine's page
// (dist/: one thread is its single-thread build, `?engine=single`; more is its threaded engine,
// `?threads=N`; its warm runs asked for from inside the page, with its animation paused, as
// ORT's page times its own); then, on ViT-S/16, the page's main thread: its longest task (a
// PerformanceObserver on `longtask`) during a pass, an explorer map and a Teach run. A second
// Chromium, with WebGPU on SwiftShader, times ORT's WebGPU execution provider and the page's
// own WebGPU timing. It prints the figures, the ratios and the targets. Serves everything
// itself on 127.0.0.1 with the COOP/COEP headers that threads need (SharedArrayBuffer), and
// drives Chromium through chromedriver's W3C WebDriver, as tests/browser/webdriver.rs does.
//
//   node bench/page-vs-ort.mjs WORK_DIR
//
// WORK_DIR holds models.json (written by bench/page-vs-ort) and, for each model NAME,
// NAME.onnx, NAME.input.bin, NAME.logits.json and the imported pair NAME.json + NAME.bpk.
// Environment (bench/page-vs-ort sets them): DIST (the built page), ORT_DIST
// (onnxruntime-web's dist/), PHOTO (the image our page answers on), TEACH_PHOTOS (a folder of
// class folders for the Teach run), CHROMIUM, CHROMEDRIVER, RUNS (default 1), WARM (timed warm
// runs, default 10), THREADS (thread counts, default "1 2 all"; all is the browser's
// navigator.hardwareConcurrency), WEBGPU_WARM (default 3), ORT_WEBGPU (models ORT's WebGPU
// runs on: all, none or a comma list; default all), ONLY (ort or page: one side alone),
// MAIN_THREAD (0 skips the main thread's long tasks).

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
const threadCounts = env('THREADS', '1 2 all').split(/[\s,]+/).filter((t) => t);
const teachPhotos = env('TEACH_PHOTOS', '');
const mainThread = env('MAIN_THREAD', '1') !== '0';
const wasmRows = env('WEBGPU_ONLY', '0') !== '1';
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

/// A Chromium session; `webgpu` offers SwiftShader's adapter, else WebGPU is off (so that the
/// page's background timing of WebGPU does not share the cores with the CPU figures).
async function openSession(driver, profile, webgpu) {
  const args = [
    '--headless=new', '--no-sandbox', '--disable-gpu-sandbox', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic', '--disable-dev-shm-usage',
    webgpu ? '--enable-unsafe-webgpu' : '--disable-features=WebGPU',
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
    evalAsync: (script, args = []) => cmd('POST', '/execute/async', { script, args }),
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
    async click(css) {
      const el = await cmd('POST', '/element', { using: 'css selector', value: css });
      await cmd('POST', `/element/${Object.values(el)[0]}/click`, {});
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

/// The page's query for `threads`: 1 is its single-thread build (what a page that is not
/// cross-origin isolated runs), more its threaded engine with a pool of that many.
// THREADED_ONE=1 (bench/page-vs-ort's header): the threaded engine on one thread as well.
const pageQuery = (threads) =>
  threads === 1 && !process.env.THREADED_ONE ? '?engine=single' : `?threads=${threads}`;

/// Opens the page (on `threads`), gives it the photo, then loads `m` from disk (as "Load a
/// model from disk" does): its first answer, the page's own background timing (Flex, then
/// WebGPU where there is one), then `warm` runs on Flex, each asked for by choosing the CPU in
/// the backend select.
async function ourPage(s, base, m, threads) {
  const started = Date.now();
  await s.goto(`${base}/${pageQuery(threads)}`);
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
  // The warm runs time the engine with the page otherwise idle, as ORT's page is: the patch
  // animation (replayed for the new model, seconds of canvas drawing at 60 frames a second on
  // the main thread, which shares the cores) is paused first.
  if (JSON.parse(await s.eval('return window.vitrine.animation();'))?.playing) await s.click('#play');
  await s.waitFor('the animation to pause', 'return JSON.parse(window.vitrine.animation()).playing === false;');
  // The runs are asked for from inside the page, one after the other, each once the page has
  // drawn the last answer (its main thread idle again), as ORT's page times its own: polling
  // through WebDriver between runs would take the cores from the passes it times.
  const ms = await s.evalAsync(`const [n, model, done] = arguments;
    const v = window.vitrine;
    let last = JSON.parse(v.predictions()).run;
    const ms = [];
    const ask = () => requestIdleCallback(() => {
      const sel = document.getElementById('backend-select');
      sel.value = 'cpu';
      sel.dispatchEvent(new Event('change'));
      wait();
    }, { timeout: 2000 });
    const wait = () => {
      if (v.state() === 'error') return done({ error: v.error() });
      const p = v.state() === 'busy' ? null : JSON.parse(v.predictions());
      if (!p || p.run <= last || p.backend !== 'cpu' || p.model !== model) return setTimeout(wait, 10);
      last = p.run;
      ms.push(p.ms);
      return ms.length < n ? ask() : done(ms);
    };
    ask();`, [warm, m.name]);
  if (!Array.isArray(ms)) throw new Error(`${m.name} on Flex: ${ms.error}`);
  const engine = JSON.parse(await s.eval('return window.vitrine.engine();'));
  if (engine.threads !== threads) throw new Error(`the page runs ${engine.threads} threads, not ${threads}: ${JSON.stringify(engine)}`);
  const o = {
    threads, load_s: load, first_ms: first.ms, first_backend: first.backend, warm_ms: median(ms), runs: ms,
    timing_cpu_first: t.cpu_first, timing_cpu: t.cpu, webgpu_first: t.webgpu_first, webgpu: t.webgpu,
  };
  console.log(
    `  our page, ${engine.build} build on ${threads} thread(s) (default model answered and timed ` +
      `${opened.toFixed(1)} s after opening): loaded from disk ` +
      `with its first answer in ${load.toFixed(2)} s; first ${o.first_ms.toFixed(1)} ms (${o.first_backend}), ` +
      `warm ${o.warm_ms.toFixed(1)} ms on Flex (median of ${ms.length}: ${ms.map((r) => r.toFixed(0)).join(' ')}); ` +
      `its background timing: Flex ${o.timing_cpu_first?.toFixed(0)} then ${o.timing_cpu?.toFixed(0)} ms, WebGPU ` +
      `${o.webgpu_first ? (o.webgpu_first / 1000).toFixed(1) + ' s then ' + (o.webgpu / 1000).toFixed(1) + ' s' : 'none'}`,
  );
  return o;
}

/// One visit of the page on WebGPU (its single-thread build, which holds WebGPU itself): `m`
/// loaded from disk, the page's background timing (its first WebGPU pass compiles and, without
/// kept choices, autotunes), then `webgpuWarm` passes asked of WebGPU. `visit` names it: the
/// first visit of a fresh profile tunes, the second finds autotune's choices kept.
async function ourWebgpu(s, base, m, visit) {
  await s.goto(`${base}/${pageQuery(1)}`);
  let p = await result(s, 'the page\'s first result', 0, 'true');
  await s.upload('#model-files', [path.join(work, `${m.name}.json`), path.join(work, `${m.name}.bpk`)]);
  p = await result(s, `${m.name}'s first answer`, p.run, `p.model === ${JSON.stringify(m.name)}`);
  const t = JSON.parse(await s.waitFor(`${m.name}'s background timing on WebGPU`,
    `const t = JSON.parse(window.vitrine.timings());
     return !t.timing && t.cpu && t.webgpu_first && t.webgpu_tuning ? window.vitrine.timings() : null;`));
  const ms = [];
  for (let i = 0; i < webgpuWarm; i++) {
    // Away and back, so that each choice of WebGPU asks for a pass.
    for (const b of ['cpu', 'webgpu']) {
      await s.eval(`const sel = document.getElementById('backend-select');
        sel.value = '${b}'; sel.dispatchEvent(new Event('change'));`);
      p = await result(s, `${m.name} on ${b}`, p.run, `p.backend === '${b}' && p.model === ${JSON.stringify(m.name)}`);
    }
    ms.push(p.ms);
  }
  const tuning = t.webgpu_tuning;
  const o = {
    visit, first_ms: t.webgpu_first, timing_ms: t.webgpu, warm_ms: median(ms), runs: ms,
    kernels: t.webgpu_kernels, tuned: tuning.tuned, recalled: tuning.recalled, tuning_ms: tuning.tuning_ms,
  };
  console.log(
    `  our page on WebGPU, ${visit} visit: first ${(o.first_ms / 1000).toFixed(1)} s (autotune: ${o.tuned} keys tuned` +
      `${o.tuning_ms ? ` over ${(o.tuning_ms / 1000).toFixed(1)} s` : ''}, ${o.recalled} recalled), then ` +
      `${(o.timing_ms / 1000).toFixed(2)} s; warm ${(o.warm_ms / 1000).toFixed(2)} s (median of ${ms.length}: ` +
      `${ms.map((r) => (r / 1000).toFixed(2)).join(' ')}); ${o.kernels ?? '?'} kernels per pass`,
  );
  return o;
}

/// The page's main thread while it works, on `m` with every thread: its longest task (a
/// `longtask` PerformanceObserver, which reports tasks over 50 ms) during one pass, one
/// explorer map and one Teach run (two classes of TEACH_PHOTOS' first folders, head only).
async function mainThreadTasks(s, base, m, threads) {
  await s.goto(`${base}/${pageQuery(threads)}`);
  let p = await result(s, 'the page\'s first result', 0, 'true');
  await s.upload('#model-files', [path.join(work, `${m.name}.json`), path.join(work, `${m.name}.bpk`)]);
  p = await result(s, `${m.name}'s first answer`, p.run, `p.model === ${JSON.stringify(m.name)}`);
  await s.waitFor('the background timing', 'const t = JSON.parse(window.vitrine.timings()); return !t.timing && t.cpu ? t : null;');
  await s.eval(`window.__long = [];
    new PerformanceObserver((l) => window.__long.push(...l.getEntries().map((e) => e.duration)))
      .observe({ type: 'longtask' });`);
  const longest = async () => {
    const v = await s.eval('const l = window.__long; window.__long = []; return l.length ? Math.max(...l) : 0;');
    return v;
  };
  const out = {};
  await longest();
  await s.upload('#file-input', [photo]);
  p = await result(s, 'a pass', p.run, `p.image === ${JSON.stringify(path.basename(photo))}`);
  out.pass = await longest();
  const e = JSON.parse(await s.eval('return window.vitrine.explorer();'));
  const [px, py, side] = e.photo;
  await s.eval(`const c = document.getElementById('explore'); c.scrollIntoView({block: 'center'});
    const r = c.getBoundingClientRect();
    c.dispatchEvent(new MouseEvent('click', { clientX: r.left + ${px + side / 3}, clientY: r.top + ${py + side / 2}, bubbles: true }));
    const l = document.getElementById('explore-layer'); l.value = 1; l.dispatchEvent(new Event('input'));`);
  await s.waitFor('the explorer map', `const e = JSON.parse(window.vitrine.explorer() || 'null');
    return e && e.method === 'attention' && e.layer === 1 && e.selected > 0 && window.vitrine.state() !== 'busy';`);
  out.map = await longest();
  if (teachPhotos) {
    const classes = fs.readdirSync(teachPhotos).filter((d) => fs.statSync(path.join(teachPhotos, d)).isDirectory()).sort().slice(0, 2);
    for (const [i, c] of classes.entries()) {
      const files = fs.readdirSync(path.join(teachPhotos, c)).sort().slice(0, 5).map((f) => path.join(teachPhotos, c, f));
      await s.upload(`#teach-files-${i}`, files);
      await s.waitFor(`photos of ${c}`, `const t = JSON.parse(window.vitrine.teach());
        return t.state !== 'adding' && t.classes[${i}] && t.classes[${i}].photos === ${files.length};`);
    }
    await longest();
    await s.click('#teach-train');
    const t = await s.waitFor('the Teach run', `const t = JSON.parse(window.vitrine.teach());
      return t.state === 'done' || t.state === 'error' ? t : null;`);
    if (t.state !== 'done') throw new Error(`the Teach run failed: ${t.error}`);
    out.teach = await longest();
    out.teach_ms = t.ms?.total;
  }
  console.log(
    `  the page's main thread on ${m.name}, ${threads} threads: longest task during a pass ${f(out.pass)} ms, ` +
      `an explorer map ${f(out.map)} ms` + (teachPhotos ? `, a Teach run (${f(out.teach_ms)} ms) ${f(out.teach)} ms` : '') +
      ' (0: none over 50 ms)',
  );
  return out;
}

// ---- main ----

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const server = await serve();
const base = `http://127.0.0.1:${server.address().port}`;
const driver = await startDriver();
const all = [];
let failed = false;
let open = null;
let cores = null;
// Interrupted: quit Chromium and chromedriver rather than leave them running.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await open?.close().catch(() => {});
    driver.child.kill();
    process.exit(130);
  });
}
/// Runs `work` in a fresh Chromium (with or without WebGPU), closed after.
async function inSession(webgpu, work) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'page-vs-ort-'));
  const s = await openSession(driver, profile, webgpu);
  open = s;
  try {
    return await work(s);
  } finally {
    await s.close().catch(() => {});
    open = null;
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
try {
  for (let run = 1; run <= runs; run++) {
    console.log(`run ${run} of ${runs}`);
    const record = { run, ort: {}, ours: {}, load: {} };
    if (wasmRows) await inSession(false, async (s) => {
      await s.goto('about:blank');
      cores ??= await s.eval('return navigator.hardwareConcurrency;');
      const counts = [...new Set(threadCounts.map((t) => (t === 'all' ? cores : Number(t))))];
      // Each model's figures, ORT's and ours at each thread count, close together in time (the
      // machine is shared).
      for (const m of models) {
        record.ort[m.name] = {};
        record.ours[m.name] = {};
        record.load[m.name] = {};
        for (const t of counts) {
          record.load[m.name][t] = load();
          console.log(` ${m.name}, ${t} thread(s) (load average ${record.load[m.name][t]}):`);
          if (only !== 'page') {
            const b = await ortRun(s, base, m.name, 'wasm', t, warm);
            record.ort[m.name][t] = b;
            failed ||= !b.ok;
          }
          if (only !== 'ort') record.ours[m.name][t] = await ourPage(s, base, m, t);
        }
      }
      const big = models[models.length - 1];
      if (mainThread && only !== 'ort') record.main = { model: big.name, ...(await mainThreadTasks(s, base, big, cores)) };
    });
    if (!wasmRows) console.log(' (WEBGPU_ONLY=1: no wasm rows)');
    const gpuModels = only === 'page' ? [] : models.filter((m) => ortWebgpu === 'all' || ortWebgpu.split(',').includes(m.name));
    if (gpuModels.length) {
      await inSession(true, async (s) => {
        for (const m of gpuModels) {
          console.log(` ${m.name} on WebGPU (load average ${load()}):`);
          record.ort[m.name] ??= {};
          record.ort[m.name].webgpu = await ortRun(s, base, m.name, 'webgpu', 1, webgpuWarm);
        }
      });
    }
    // Our WebGPU in a profile of its own, so that its first visit tunes: then a second visit.
    const ourGpu = only === 'ort' ? [] : models.filter((m) => ortWebgpu === 'all' || ortWebgpu.split(',').includes(m.name));
    if (ourGpu.length) {
      await inSession(true, async (s) => {
        for (const m of ourGpu) {
          console.log(` ${m.name}, our page on WebGPU (load average ${load()}):`);
          const first = await ourWebgpu(s, base, m, 'first');
          const second = await ourWebgpu(s, base, m, 'second');
          record.ours[m.name] ??= {};
          record.ours[m.name].webgpu = { first, second };
        }
      });
    }
    all.push(record);
    fs.writeFileSync(path.join(work, 'results.json'), JSON.stringify(all, null, 1));
  }
} finally {
  driver.child.kill();
  server.close();
}

// The summary: per model and thread count, one line per run and the range over the runs; then
// the targets: ours no slower than ORT at every thread count, and ViT-Ti/16 on two threads at
// most 0.6 of itself on one.
const range = (xs, d = 0) => {
  const v = xs.filter((x) => Number.isFinite(x));
  if (!v.length) return '–';
  const [lo, hi] = [Math.min(...v), Math.max(...v)];
  return lo.toFixed(d) === hi.toFixed(d) ? lo.toFixed(d) : `${lo.toFixed(d)}–${hi.toFixed(d)}`;
};
console.log('\nwarm ms, median (first ms); ours on Flex against ORT-web wasm at the same thread count; ratio = ours / ORT');
const targets = [];
for (const m of models) {
  const counts = Object.keys(all[0]?.ours[m.name] ?? all[0]?.ort[m.name] ?? {}).filter((k) => k !== 'webgpu').map(Number);
  for (const t of counts) {
    const rows = all.map((r) => {
      const o = r.ours[m.name]?.[t] ?? {};
      const w = r.ort[m.name]?.[t] ?? {};
      return { ours: o.warm_ms, ours_first: o.first_ms, ort: w.warm_ms, ort_first: w.first_ms, r: o.warm_ms / w.warm_ms, load: r.load[m.name]?.[t] };
    });
    for (const [i, r] of rows.entries()) {
      console.log(
        `${m.name}, ${t} thread(s), run ${i + 1} (load ${r.load}): ours ${f(r.ours, 1)} (${f(r.ours_first)}), ` +
          `ORT ${f(r.ort, 1)} (${f(r.ort_first)}); ours/ORT ${f(r.r, 2)}`,
      );
    }
    const col = (k, d) => range(rows.map((r) => r[k]), d);
    console.log(`${m.name}, ${t} thread(s) over ${rows.length} run(s): ours ${col('ours', 1)} ms (first ${col('ours_first')}), ORT ${col('ort', 1)} ms (first ${col('ort_first')}); ours/ORT ${col('r', 2)}`);
    const worst = Math.max(...rows.map((r) => r.r).filter(Number.isFinite));
    if (Number.isFinite(worst)) targets.push([`${m.name} on ${t} thread(s): ours <= ORT`, worst <= 1, `worst ours/ORT ${worst.toFixed(2)}`]);
  }
  const gpu = all.map((r) => ({ ort: r.ort[m.name]?.webgpu, ours: r.ours[m.name]?.webgpu })).filter((g) => g.ort || g.ours);
  for (const [i, g] of gpu.entries()) {
    const [a, b] = [g.ours?.first, g.ours?.second];
    const r = a?.warm_ms / g.ort?.warm_ms;
    console.log(
      `${m.name} on WebGPU, run ${i + 1}: ORT warm ${f(g.ort?.warm_ms)} ms (first ${f(g.ort?.first_ms)}); ours warm ` +
        `${f(a?.warm_ms)} ms (first ${f(a?.first_ms)} tuning ${a?.tuned ?? '?'} keys, with the kept choices ` +
        `${f(b?.first_ms)}, ${b?.tuned ?? '?'} tuned; warm ${f(b?.warm_ms)}); kernels per pass: ours ${a?.kernels ?? '?'}, ` +
        `ORT not counted; ours/ORT ${f(r, 2)}`,
    );
    if (Number.isFinite(r)) targets.push([`${m.name} on WebGPU: ours <= ORT (run ${i + 1})`, r <= 1, `ours/ORT ${r.toFixed(2)}`]);
    if (b) targets.push([`${m.name} on WebGPU: a second visit tunes nothing (run ${i + 1})`, b.tuned === 0, `${b.tuned} keys tuned, ${b.recalled} recalled`]);
  }
}
const ti = models.find((m) => m.name.startsWith('vit_tiny'));
if (ti) {
  const scale = all.map((r) => r.ours[ti.name]?.[2]?.warm_ms / r.ours[ti.name]?.[1]?.warm_ms).filter(Number.isFinite);
  if (scale.length) targets.push([`${ti.name}: ours on 2 threads <= 0.6 x ours on 1`, Math.max(...scale) <= 0.6, `ratios ${scale.map((x) => x.toFixed(2)).join(', ')}`]);
}
for (const r of all.filter((r) => r.main)) {
  const worst = Math.max(r.main.pass, r.main.map, r.main.teach ?? 0);
  targets.push([`the main thread on ${r.main.model}: no task over 50 ms (run ${r.run})`, worst <= 50,
    `pass ${f(r.main.pass)} ms, map ${f(r.main.map)} ms, teach ${f(r.main.teach)} ms`]);
}
console.log('\ntargets:');
for (const [what, met, figures] of targets) console.log(`  ${met ? 'met    ' : 'NOT MET'} ${what} (${figures})`);
console.log(`results: ${path.join(work, 'results.json')}`);
if (failed) fail('ORT\'s wasm backend failed (above)');
