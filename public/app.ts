// PonIO dashboard enhancements (progressive: every page works without this script).
// Live updates over socket.io, toasts, progress on submit, confirmation modals, copy buttons.
// Compiled to /static/app.js by the panel (server/http/assets.ts); strict CSP, no inline code.
import type { Socket } from 'socket.io-client';

interface HostStateMsg {
  id: string;
  state: string;
  lastError: string | null;
  agentVersion: string | null;
}
interface HostChangeMsg {
  hostId: string;
  action: string;
  module: string;
  actor: string;
  ok: boolean;
  message: string;
}
interface AgentEventMsg {
  hostId: string;
  topic: string;
  data: unknown;
}
interface BootstrapGlobal {
  Toast: { getOrCreateInstance(el: Element, o?: object): { show(): void } };
  Modal: { getOrCreateInstance(el: Element): { show(): void; hide(): void } };
}
declare const io: (opts?: object) => Socket;
declare const bootstrap: BootstrapGlobal | undefined;

const body = document.body;
const hostId = body.dataset.hostId ?? '';
const jobId = Number(body.dataset.jobId ?? '0');
const tab = body.dataset.tab ?? '';

function toast(message: string, kind: 'success' | 'danger' | 'info' | 'warning' = 'info'): void {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = document.createElement('div');
  el.className = `toast align-items-center border-0 text-bg-${kind}`;
  el.setAttribute('role', kind === 'danger' ? 'alert' : 'status');
  const row = document.createElement('div');
  row.className = 'd-flex';
  const text = document.createElement('div');
  text.className = 'toast-body';
  text.textContent = message;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn-close btn-close-white me-2 m-auto';
  close.setAttribute('data-bs-dismiss', 'toast');
  close.setAttribute('aria-label', 'Close');
  row.append(text, close);
  el.append(row);
  box.append(el);
  el.addEventListener('hidden.bs.toast', () => el.remove());
  if (typeof bootstrap !== 'undefined') bootstrap.Toast.getOrCreateInstance(el, { delay: 6000 }).show();
}

function applyWidths(root: ParentNode): void {
  root.querySelectorAll<HTMLElement>('[data-width]').forEach((el) => {
    const w = Number(el.dataset.width);
    if (Number.isFinite(w)) el.style.width = `${Math.max(0, Math.min(100, w))}%`;
  });
}

/** Re-renders the live regions of the current page from a fresh copy of it (keeps focused forms). */
let refreshing = false;
let again = false;
async function refreshRegions(): Promise<void> {
  if (body.dataset.liveRefresh !== 'on') return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    const res = await fetch(location.href, {
      headers: { accept: 'text/html', 'x-ponio-refresh': '1' },
      credentials: 'same-origin',
    });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    document.querySelectorAll<HTMLElement>('[data-live-region]').forEach((region) => {
      const fresh = doc.querySelector(`[data-live-region="${region.dataset.liveRegion ?? ''}"]`);
      if (!fresh) return;
      const active = document.activeElement;
      const typing =
        active instanceof HTMLElement &&
        region.contains(active) &&
        (active instanceof HTMLInputElement ||
          active instanceof HTMLTextAreaElement ||
          active instanceof HTMLSelectElement) &&
        active.value !== '';
      if (typing) return;
      region.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
      applyWidths(region);
    });
  } catch {
    /* offline: the next event refreshes again */
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      void refreshRegions();
    }
  }
}

function setLive(text: string, cls: string): void {
  const el = document.getElementById('live-status');
  if (!el) return;
  el.textContent = text;
  el.className = `badge ${cls}`;
  el.dataset.state = text;
}

function connectLive(): void {
  if (typeof io !== 'function' || body.dataset.signedIn !== 'yes') return;
  const socket = io({ transports: ['websocket'] });
  socket.on('connect', () => {
    setLive('live', 'text-bg-success');
    if (hostId) socket.emit('watch host', hostId);
    if (document.querySelector('[data-live-region="overview"]')) socket.emit('watch overview');
    // Jobs (docs/jobs.md): a job's page follows that job, the list every job.
    // Re-render once on joining: the job may have moved on between the page load and now.
    if (jobId > 0) {
      socket.emit('watch job', jobId);
      void refreshRegions();
    } else if (document.querySelector('[data-watch-jobs]')) socket.emit('watch job', 'all');
  });
  socket.on('jobChange', () => void refreshRegions());
  socket.on('disconnect', () => setLive('offline', 'text-bg-secondary'));
  socket.on('connect_error', () => setLive('offline', 'text-bg-secondary'));
  socket.on('hostState', (s: HostStateMsg) => {
    let changed = false;
    document.querySelectorAll<HTMLElement>('[data-host-state]').forEach((el) => {
      if (el.dataset.hostState !== s.id) return;
      if (el.textContent?.trim() !== s.state) changed = true;
      el.textContent = s.state;
      el.className = `badge host-state state-${s.state}`;
    });
    document.querySelectorAll<HTMLElement>('[data-host-error]').forEach((el) => {
      if (el.dataset.hostError === s.id) el.textContent = s.state === 'online' ? '' : (s.lastError ?? '');
    });
    // Online/offline changes what the host tab and the overview can show (facts, counts, modules).
    if (changed && (s.id === hostId || document.querySelector('[data-live-region="overview"]')))
      void refreshRegions();
  });
  socket.on('hostChange', (c: HostChangeMsg) => {
    const onThisTab = c.hostId === hostId && (c.module === tab || tab === 'system');
    const onOverview = document.querySelector('[data-live-region="overview"]') !== null;
    if (onThisTab || onOverview) void refreshRegions();
    toast(c.ok ? `${c.actor}: ${c.action}` : `${c.action} failed: ${c.message}`, c.ok ? 'success' : 'danger');
  });
  socket.on('hostsChanged', () => void refreshRegions());
  socket.on('agentEvent', (e: AgentEventMsg) => {
    if (e.topic === 'progress') {
      showProgress(e.data);
      return;
    }
    const d = e.data as { message?: unknown } | null;
    const msg = d && typeof d.message === 'string' ? d.message : e.topic;
    toast(msg, e.topic.includes('revert') || e.topic.includes('fail') ? 'warning' : 'info');
  });
}

// Progress: a submitted form's button shows a spinner until the next page arrives; on a host page
// the form carries a fresh progressId, and the agent's steps for that very call ('progress'
// events, server/http/progress.ts) are shown next to the spinner as they happen.
let pending: { id: string; step: HTMLElement } | null = null;

function showProgress(data: unknown): void {
  const d = data as { requestId?: unknown; message?: unknown } | null;
  if (!pending || !d || d.requestId !== pending.id || typeof d.message !== 'string') return;
  pending.step.textContent = `${d.message}…`;
}

function tagForProgress(form: HTMLFormElement): string | null {
  if (!hostId || form.method.toLowerCase() !== 'post' || typeof crypto.randomUUID !== 'function') return null;
  let input = form.querySelector<HTMLInputElement>('input[name="progressId"]');
  if (!input) {
    input = document.createElement('input');
    input.type = 'hidden';
    input.name = 'progressId';
    form.append(input);
  }
  input.value = crypto.randomUUID();
  return input.value;
}

document.addEventListener('submit', (ev) => {
  const form = ev.target;
  if (!(form instanceof HTMLFormElement)) return;
  // The confirmation text is the form's, or the pressed button's (a form with several buttons).
  const submitter = ev.submitter;
  const confirmText = submitter?.dataset.confirm ?? form.dataset.confirm;
  if (confirmText && form.dataset.confirmed !== 'yes' && typeof bootstrap !== 'undefined') {
    ev.preventDefault();
    askConfirm(confirmText, () => {
      form.dataset.confirmed = 'yes';
      form.requestSubmit(submitter instanceof HTMLButtonElement ? submitter : null);
    });
    return;
  }
  const progressId = tagForProgress(form);
  const btn = form.querySelector<HTMLButtonElement>('button[type="submit"], button:not([type])');
  if (btn && !btn.disabled) {
    window.setTimeout(() => {
      btn.disabled = true;
      const spin = document.createElement('span');
      spin.className = 'spinner-border spinner-border-sm ms-2';
      spin.setAttribute('role', 'status');
      spin.setAttribute('aria-label', 'Working');
      btn.append(spin);
      if (progressId) {
        const step = document.createElement('span');
        step.className = 'small text-muted ms-2';
        step.dataset.progressStep = '';
        step.setAttribute('aria-live', 'polite');
        btn.after(step);
        pending = { id: progressId, step };
      }
    }, 0);
  }
});

function askConfirm(text: string, onYes: () => void): void {
  const el = document.getElementById('confirm-modal');
  if (!el || typeof bootstrap === 'undefined') {
    onYes();
    return;
  }
  const textEl = el.querySelector('[data-confirm-text]');
  if (textEl) textEl.textContent = text;
  const modal = bootstrap.Modal.getOrCreateInstance(el);
  const yes = el.querySelector<HTMLButtonElement>('[data-confirm-yes]');
  if (yes)
    yes.onclick = () => {
      modal.hide();
      onYes();
    };
  modal.show();
}

// Copy buttons: <button data-copy-target="#id">.
document.addEventListener('click', (ev) => {
  const btn = ev.target instanceof Element ? ev.target.closest<HTMLElement>('[data-copy-target]') : null;
  if (!btn) return;
  const src = document.querySelector(btn.dataset.copyTarget ?? '');
  const text = src?.textContent?.trim() ?? '';
  if (!text) return;
  navigator.clipboard.writeText(text).then(
    () => toast('Copied to the clipboard.', 'success'),
    () => toast('Copy failed: select the text and copy it by hand.', 'warning'),
  );
});

// <select data-autosubmit="VALUE">: choosing submits the form with the button do=VALUE (the
// button is there for browsers without JavaScript).
document.addEventListener('change', (ev) => {
  const el = ev.target;
  if (!(el instanceof HTMLSelectElement) || !el.dataset.autosubmit || !el.form) return;
  const btn = el.form.querySelector<HTMLButtonElement>(`button[name="do"][value="${el.dataset.autosubmit}"]`);
  if (btn) el.form.requestSubmit(btn);
});

applyWidths(document);
connectLive();
