// Passkeys and security keys (WebAuthn) for the two-factor pages: registration on
// /account/two-factor, sign-in on /login/two-factor. The browser part of SimpleWebAuthn is
// served by the panel itself (/static/webauthn/, from node_modules; no CDN) and sets a global.
interface SimpleWebAuthnBrowserApi {
  browserSupportsWebAuthn(): boolean;
  startRegistration(o: { optionsJSON: unknown }): Promise<unknown>;
  startAuthentication(o: { optionsJSON: unknown }): Promise<unknown>;
}
declare const SimpleWebAuthnBrowser: SimpleWebAuthnBrowserApi;

const csrf = (): string =>
  document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ??
  document.querySelector<HTMLInputElement>('input[name="_csrf"]')?.value ??
  '';

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf() },
    body: JSON.stringify(body),
  });
  const data = (await r.json().catch(() => ({}))) as Record<string, unknown>;
  if (!r.ok) {
    const err = data.error as { message?: string } | undefined;
    throw new Error(err?.message ?? `The panel answered ${r.status}.`);
  }
  return data;
}

function showError(e: unknown): void {
  const el = document.getElementById('passkey-error');
  if (!el) return;
  el.textContent = e instanceof Error ? e.message : String(e);
  el.hidden = false;
}

const register = document.getElementById('passkey-register') as HTMLButtonElement | null;
const signin = document.getElementById('passkey-signin') as HTMLButtonElement | null;
const supported =
  typeof SimpleWebAuthnBrowser !== 'undefined' && SimpleWebAuthnBrowser.browserSupportsWebAuthn();

if (register) {
  register.disabled = !supported;
  if (!supported) showError(new Error('This browser does not support passkeys or security keys.'));
  register.addEventListener('click', () => {
    void (async () => {
      register.disabled = true;
      try {
        const name = (document.getElementById('passkey-name') as HTMLInputElement | null)?.value ?? '';
        const { options } = await post('/account/two-factor/passkeys/options', {});
        const response = await SimpleWebAuthnBrowser.startRegistration({ optionsJSON: options });
        await post('/account/two-factor/passkeys', { name, response });
        window.location.assign('/account/two-factor');
      } catch (e) {
        showError(e);
        register.disabled = false;
      }
    })();
  });
}

if (signin) {
  signin.disabled = !supported;
  if (!supported) showError(new Error('This browser does not support passkeys; use a code instead.'));
  signin.addEventListener('click', () => {
    void (async () => {
      signin.disabled = true;
      try {
        const { options } = await post('/login/two-factor/passkey/options', {});
        const response = await SimpleWebAuthnBrowser.startAuthentication({ optionsJSON: options });
        const done = await post('/login/two-factor/passkey', { response, next: signin.dataset.next ?? '/' });
        window.location.assign(typeof done.redirect === 'string' ? done.redirect : '/');
      } catch (e) {
        showError(e);
        signin.disabled = false;
      }
    })();
  });
}
