// UI strings in English and Chinese, the chosen language (remembered in localStorage),
// and `t(key, params)` to look a string up with {placeholders} filled in.

export type Lang = 'en' | 'zh';
const STORAGE_KEY = 'drydock.lang';

const en = {
  tagline: 'A real Linux machine with Docker, in your browser, for learning.',
  lessons: 'Lessons',
  noLessons: 'No lessons are available yet. The free playground is always open.',
  lessonsError: 'Could not load the lessons: {error}',
  minutes: '{n} min',
  steps: '{n} steps',
  startLesson: 'Start lesson',
  playgrounds: 'Playgrounds',
  freePlayground: 'Free playground',
  freePlaygroundHint: 'A Docker machine with nothing preinstalled.',
  k8sPlayground: 'Kubernetes playground',
  k8sPlaygroundHint: 'A single-node Kubernetes with kubectl.',
  language: 'Language',
  unavailable: 'Not available on this server right now. {reason}',
  starting: 'Starting your machine…',
  startingInstance: '{name}: {state}',
  stateStarting: 'starting',
  stateReady: 'ready',
  stateFailed: 'failed',
  elapsed: '{s} s',
  serverFull: 'The server is full right now. Please try again in a few minutes.',
  rateLimited: 'Too many sessions were started from here. Please wait a moment and try again.',
  startFailed: 'The machine could not be started: {error}',
  requestFailed: 'Request failed: {error}',
  tryAgain: 'Try again',
  cancel: 'Cancel',
  back: 'Back to the start page',
  // session page
  sessionLoading: 'Loading session…',
  sessionGone: 'This session has ended or does not exist.',
  timeLeft: 'Time left',
  expired: 'expired',
  extend: 'Extend',
  extended: 'Extended',
  close: 'Close',
  closeConfirm: 'Close this session? Everything in it will be deleted.',
  addInstance: 'Add instance',
  removeInstance: 'Remove {name}',
  removeConfirm: 'Remove {name}? Everything on it will be deleted.',
  instances: 'Instances',
  openPorts: 'Open ports',
  noPorts: 'no open ports',
  portLink: 'Open port {port} of {name} in a new tab',
  connecting: 'connecting…',
  reconnecting: 'connection lost, reconnecting…',
  shellExited: 'shell exited (status {status}) — press Enter to start a new one',
  instanceStarting: '{name} is starting…',
  instanceFailed: '{name} failed to start.',
  lesson: 'Lesson',
  stepOf: 'Step {n} of {total}',
  stepN: 'Step {n}',
  stepList: 'Steps',
  stepPassed: 'Step {n}, passed',
  previous: 'Previous',
  next: 'Next',
  check: 'Check',
  checking: 'Checking…',
  passed: 'Passed',
  failed: 'Not yet',
  runCommand: 'Run in the terminal: {cmd}',
  copy: 'Copy',
  copied: 'Copied',
  resizePanes: 'Resize the lesson and terminal panes',
  lessonError: 'Could not load the lesson: {error}',
  terminal: 'Terminal of {name}',
};

type Key = keyof typeof en;

const zh: Record<Key, string> = {
  tagline: '在浏览器里使用一台装有 Docker 的真实 Linux 机器来学习。',
  lessons: '课程',
  noLessons: '暂时还没有课程。自由练习场随时可用。',
  lessonsError: '无法加载课程：{error}',
  minutes: '{n} 分钟',
  steps: '{n} 步',
  startLesson: '开始课程',
  playgrounds: '练习场',
  freePlayground: '自由练习场',
  freePlaygroundHint: '一台没有预装任何内容的 Docker 机器。',
  k8sPlayground: 'Kubernetes 练习场',
  k8sPlaygroundHint: '带 kubectl 的单节点 Kubernetes。',
  language: '语言',
  unavailable: '此服务器目前不提供。{reason}',
  starting: '正在启动你的机器…',
  startingInstance: '{name}：{state}',
  stateStarting: '启动中',
  stateReady: '就绪',
  stateFailed: '失败',
  elapsed: '{s} 秒',
  serverFull: '服务器已满，请几分钟后再试。',
  rateLimited: '从这里启动的会话太多了，请稍等片刻再试。',
  startFailed: '机器启动失败：{error}',
  requestFailed: '请求失败：{error}',
  tryAgain: '重试',
  cancel: '取消',
  back: '返回首页',
  sessionLoading: '正在加载会话…',
  sessionGone: '此会话已结束或不存在。',
  timeLeft: '剩余时间',
  expired: '已过期',
  extend: '延长',
  extended: '已延长',
  close: '关闭',
  closeConfirm: '关闭此会话？其中的所有内容都将被删除。',
  addInstance: '添加实例',
  removeInstance: '移除 {name}',
  removeConfirm: '移除 {name}？其上的所有内容都将被删除。',
  instances: '实例',
  openPorts: '开放端口',
  noPorts: '没有开放的端口',
  portLink: '在新标签页中打开 {name} 的 {port} 端口',
  connecting: '正在连接…',
  reconnecting: '连接已断开，正在重新连接…',
  shellExited: 'shell 已退出（状态 {status}）— 按回车键启动新的 shell',
  instanceStarting: '{name} 正在启动…',
  instanceFailed: '{name} 启动失败。',
  lesson: '课程',
  stepOf: '第 {n} 步，共 {total} 步',
  stepN: '第 {n} 步',
  stepList: '步骤',
  stepPassed: '第 {n} 步，已通过',
  previous: '上一步',
  next: '下一步',
  check: '检查',
  checking: '检查中…',
  passed: '通过',
  failed: '还没有完成',
  runCommand: '在终端中运行：{cmd}',
  copy: '复制',
  copied: '已复制',
  resizePanes: '调整课程和终端窗格的大小',
  lessonError: '无法加载课程：{error}',
  terminal: '{name} 的终端',
};

const tables: Record<Lang, Record<Key, string>> = { en, zh };

function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'zh') return saved;
  } catch {
    /* storage unavailable */
  }
  return typeof navigator !== 'undefined' && navigator.language?.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

let current: Lang = initialLang();

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  try {
    localStorage.setItem(STORAGE_KEY, l);
  } catch {
    /* storage unavailable: the choice lasts for this page */
  }
  applyLang();
}

export function applyLang(): void {
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}

export function t(key: Key, params: Record<string, string | number> = {}): string {
  const s = tables[current][key] ?? en[key];
  return s.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}
