// A stand-in for `drydock serve` for UI development and the browser test while the real
// server is not available: serves dist/ (SPA fallback) and the External API of the design
// brief in memory, with real bash shells on pseudo-terminals speaking the terminal frame
// protocol (scrollback replay, end-of-replay, exit status, flow control with acks).
// Usage: node tests/mock-server.mjs  (MOCK_PORT, default 18081; MOCK_LESSONS=0 for none)

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../dist');
const port = Number(process.env.MOCK_PORT ?? 18081);
const withLessons = process.env.MOCK_LESSONS !== '0';
const SCROLLBACK = 256 * 1024;
const WINDOW = 256 * 1024;
const sessions = new Map();
const stats = { acked: 0, sent: 0 };

// Python helper: bash on a PTY; stdin → pty, pty → stdout, "cols rows\n" lines on fd 3 resize.
const PTY_HELPER = `
import os, pty, sys, select, fcntl, termios, struct, signal
pid, fd = pty.fork()
if pid == 0:
    os.environ['TERM'] = 'xterm-256color'
    os.environ['PS1'] = 'mock@node:\\\\w\\\\$ '
    os.execvp('bash', ['bash', '--norc', '--noprofile', '-i'])
ctl = os.fdopen(3, 'rb', 0)
buf = b''
pending = b''
os.set_blocking(fd, False)
while True:
    rl = [fd, ctl] + ([0] if len(pending) < (1 << 20) else [])
    r, w, _ = select.select(rl, [fd] if pending else [], [])
    if fd in w:
        try: pending = pending[os.write(fd, pending[:4096]):]
        except BlockingIOError: pass
    if fd in r:
        try: data = os.read(fd, 65536)
        except BlockingIOError: data = None
        except OSError: data = b''
        if data == b'': break
        if data: os.write(1, data)
    if 0 in r:
        data = os.read(0, 65536)
        if data: pending += data
    if ctl in r:
        buf += ctl.read(64) or b''
        while b'\\n' in buf:
            line, buf = buf.split(b'\\n', 1)
            c, rws = map(int, line.split())
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rws, c, 0, 0))
            os.kill(pid, signal.SIGWINCH)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else status >> 8)
`;

const lessons = withLessons
  ? [
      {
        id: 'mock-basics',
        template: 'docker',
        minutes: 5,
        title: { en: 'Mock lesson: shell basics', zh: '模拟课程：shell 基础' },
        summary: { en: 'Run a command, make a file.', zh: '运行一条命令，创建一个文件。' },
        steps: [
          {
            title: { en: 'Say hello', zh: '打个招呼' },
            html: {
              en: '<h1>Say hello</h1><p>Run this command:</p><pre><code class="language-sh runnable">echo hello-from-lesson</code></pre><p>Or copy this one:</p><pre><code class="language-sh">uname -a</code></pre>',
              zh: '<h1>打个招呼</h1><p>运行这条命令：</p><pre><code class="language-sh runnable">echo hello-from-lesson</code></pre><p>或者复制这条：</p><pre><code class="language-sh">uname -a</code></pre>',
            },
          },
          {
            title: { en: 'Make a file', zh: '创建文件' },
            html: {
              en: '<p>Create a file:</p><pre><code class="language-sh runnable">touch /tmp/drydock-mock-step2</code></pre>',
              zh: '<p>创建一个文件：</p><pre><code class="language-sh runnable">touch /tmp/drydock-mock-step2</code></pre>',
            },
          },
        ],
      },
    ]
  : [];

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      try {
        resolve(data ? JSON.parse(data) : {});
      } catch {
        resolve(null);
      }
    });
  });
}

function tokenOf(req, url) {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  const q = url.searchParams.get('token');
  if (q) return q;
  const m = /(?:^|;\s*)drydock_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return m ? decodeURIComponent(m[1]) : null;
}

function authed(req, url, id) {
  const s = sessions.get(id);
  return s && tokenOf(req, url) === s.token ? s : null;
}

function view(s) {
  return {
    id: s.id,
    expires_at: new Date(s.expiresAt).toISOString(),
    template: s.template,
    lesson: s.lesson,
    instances: [...s.instances.values()].map((i) => ({ name: i.name, state: i.state })),
    progress: [...(s.progress ?? new Map()).entries()].map(([step, passed]) => ({ step, passed, checked_at: new Date().toISOString() })),
  };
}

function addInstance(s) {
  let n = 1;
  while (s.instances.has(`node${n}`)) n++;
  const inst = { name: `node${n}`, state: 'starting', terminals: new Map() };
  s.instances.set(inst.name, inst);
  setTimeout(() => (inst.state = 'ready'), 1200);
  return inst;
}

function destroyInstance(inst) {
  for (const term of inst.terminals.values()) term.kill();
  inst.terminals.clear();
}

function lessonView(l, lang, full) {
  const pick = (v) => (typeof v === 'object' ? (v[lang] ?? v.en) : v);
  return {
    id: l.id,
    title: pick(l.title),
    template: l.template,
    minutes: l.minutes,
    summary: pick(l.summary),
    steps: full ? l.steps.map((s) => ({ title: pick(s.title), html: pick(s.html) })) : l.steps.length,
  };
}

async function api(req, res, url) {
  const parts = url.pathname.split('/').filter(Boolean).slice(2); // after /api/v1
  const method = req.method;
  const lang = url.searchParams.get('lang') === 'zh' ? 'zh' : 'en';
  if (parts[0] === 'lessons' && method === 'GET') {
    if (parts.length === 1) return json(res, 200, lessons.map((l) => lessonView(l, lang, false)));
    const l = lessons.find((x) => x.id === parts[1]);
    return l ? json(res, 200, lessonView(l, lang, true)) : json(res, 404, { error: `no lesson ${parts[1]}` });
  }
  if (parts[0] === 'templates') {
    return json(res, 200, [
      { id: 'docker', available: true, reason: null },
      { id: 'kubernetes', available: false, reason: 'the mock server runs no Kubernetes' },
    ]);
  }
  if (parts[0] !== 'sessions') return json(res, 404, { error: 'not found' });
  if (parts.length === 1 && method === 'POST') {
    const body = await readBody(req);
    if (!body || !['docker', 'kubernetes'].includes(body.template)) return json(res, 400, { error: 'bad template' });
    if (sessions.size >= Number(process.env.MOCK_MAX_SESSIONS ?? 20)) return json(res, 503, { error: 'all 20 seats are taken' });
    const s = {
      id: randomBytes(8).toString('hex'),
      token: randomBytes(16).toString('hex'),
      template: body.template,
      lesson: body.lesson ?? null,
      expiresAt: Date.now() + 60 * 60_000,
      instances: new Map(),
    };
    addInstance(s);
    sessions.set(s.id, s);
    return json(res, 201, { ...view(s), token: s.token }, { 'Set-Cookie': `drydock_session=${s.token}; Path=/; HttpOnly; SameSite=Lax` });
  }
  const s = authed(req, url, parts[1]);
  if (!s) return json(res, 404, { error: `no session ${parts[1]}` });
  const rest = parts.slice(2);
  if (rest.length === 0 && method === 'GET') return json(res, 200, view(s));
  if (rest.length === 0 && method === 'DELETE') {
    s.instances.forEach(destroyInstance);
    sessions.delete(s.id);
    res.writeHead(204);
    return res.end();
  }
  if (rest[0] === 'extend' && method === 'POST') {
    s.expiresAt += 30 * 60_000;
    return json(res, 200, view(s));
  }
  if (rest[0] === 'instances' && rest.length === 1 && method === 'POST') {
    const inst = addInstance(s);
    return json(res, 201, { name: inst.name, state: inst.state });
  }
  if (rest[0] === 'instances' && rest.length === 2 && method === 'DELETE') {
    const inst = s.instances.get(rest[1]);
    if (!inst) return json(res, 404, { error: `no instance ${rest[1]}` });
    destroyInstance(inst);
    s.instances.delete(rest[1]);
    res.writeHead(204);
    return res.end();
  }
  if (rest[0] === 'instances' && rest[2] === 'ports' && method === 'GET') {
    return json(res, 200, s.instances.has(rest[1]) ? [{ port: 8080 }] : []);
  }
  if (rest[0] === 'lesson' && rest[1] === 'steps' && rest[3] === 'check' && method === 'POST') {
    const n = Number(rest[2]);
    const passed = n === 0 ? true : existsSync('/tmp/drydock-mock-step2');
    s.progress ??= new Map();
    if (passed || !s.progress.get(n)) s.progress.set(n, passed);
    return json(res, 200, { passed, message: passed ? 'Well done.' : 'The file /tmp/drydock-mock-step2 does not exist yet.' });
  }
  return json(res, 404, { error: `no route ${method} ${url.pathname}` });
}

function serveStatic(req, res, url) {
  if (url.pathname === '/__mock/stats') return json(res, 200, stats);
  let file = path.join(dist, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''));
  if (!file.startsWith(dist) || !existsSync(file) || statSync(file).isDirectory()) file = path.join(dist, 'index.html');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
  res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(res);
}

class MockTerminal {
  constructor(onGone) {
    this.scrollback = [];
    this.scrollbackLen = 0;
    this.clients = new Set();
    this.unacked = 0;
    this.proc = spawn('python3', ['-c', PTY_HELPER], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
    this.proc.stdout.on('data', (chunk) => this.output(chunk));
    for (const stream of [this.proc.stdin, this.proc.stdout, this.proc.stdio[3]]) stream.on('error', () => undefined);
    this.proc.on('exit', (code, signal) => {
      const status = code ?? (signal ? 128 : 0);
      const frame = Buffer.alloc(5);
      frame[0] = 3;
      frame.writeInt32BE(status, 1);
      for (const ws of this.clients) {
        ws.send(frame);
        ws.close(1000, 'shell exited');
      }
      onGone();
    });
  }
  output(chunk) {
    this.scrollback.push(chunk);
    this.scrollbackLen += chunk.length;
    while (this.scrollbackLen > SCROLLBACK && this.scrollback.length > 1) this.scrollbackLen -= this.scrollback.shift().length;
    for (const ws of this.clients) ws.send(Buffer.concat([Buffer.of(0), chunk]));
    stats.sent += chunk.length;
    this.unacked += chunk.length;
    if (this.unacked > WINDOW && this.clients.size > 0) this.proc.stdout.pause();
  }
  attach(ws) {
    this.clients.add(ws);
    const replay = Buffer.concat(this.scrollback);
    for (let off = 0; off < replay.length; off += 64 * 1024) ws.send(Buffer.concat([Buffer.of(0), replay.subarray(off, off + 64 * 1024)]));
    ws.send(Buffer.of(2));
    this.unacked = 0;
    this.proc.stdout.resume();
    ws.on('message', (data) => {
      const buf = Buffer.from(data);
      if (buf[0] === 0) this.proc.stdin.write(buf.subarray(1));
      else if (buf[0] === 1 && buf.length === 5) this.proc.stdio[3].write(`${buf.readUInt16BE(1)} ${buf.readUInt16BE(3)}\n`);
      else if (buf[0] === 2 && buf.length === 5) {
        const n = buf.readUInt32BE(1);
        stats.acked += n;
        this.unacked = Math.max(0, this.unacked - n);
        if (this.unacked <= WINDOW) this.proc.stdout.resume();
      }
    });
    ws.on('close', () => {
      this.clients.delete(ws);
      if (this.clients.size === 0) this.proc.stdout.resume();
    });
  }
  kill() {
    for (const ws of this.clients) ws.close(1000, 'instance removed');
    this.proc.kill('SIGKILL');
  }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (url.pathname === '/healthz') return json(res, 200, { ok: true });
  if (url.pathname.startsWith('/api/v1/')) return void api(req, res, url).catch((e) => json(res, 500, { error: String(e) }));
  if (url.pathname.startsWith('/p/')) return json(res, 502, { error: 'the mock has no port proxy' });
  serveStatic(req, res, url);
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  const m = /^\/api\/v1\/sessions\/([^/]+)\/instances\/([^/]+)\/terminals\/([a-z0-9-]{1,32})$/.exec(url.pathname);
  const s = m && authed(req, url, m[1]);
  const inst = s && s.instances.get(m[2]);
  if (!inst || inst.state !== 'ready') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let term = inst.terminals.get(m[3]);
    if (!term) {
      term = new MockTerminal(() => inst.terminals.delete(m[3]));
      inst.terminals.set(m[3], term);
    }
    term.attach(ws);
  });
});

server.listen(port, '127.0.0.1', () => console.log(`mock drydock on http://127.0.0.1:${port} (dist: ${dist})`));
const stop = () => {
  for (const s of sessions.values()) s.instances.forEach(destroyInstance);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
