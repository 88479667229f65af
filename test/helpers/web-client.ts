import https from 'node:https';

export interface WebResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  location: string | null;
}

/**
 * A cookie-keeping HTTPS client for dashboard tests (no JavaScript, like a plain browser form):
 * GET pages, read the CSRF token from them, POST URL-encoded forms.
 */
export class WebClient {
  readonly cookies = new Map<string, string>();

  constructor(
    readonly baseUrl: string,
    private readonly ca: string,
  ) {}

  request(
    method: string,
    path: string,
    opts: { form?: Record<string, string>; headers?: Record<string, string>; body?: string } = {},
  ): Promise<WebResponse> {
    const body = opts.form ? new URLSearchParams(opts.form).toString() : opts.body;
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return new Promise((resolve, reject) => {
      const req = https.request(
        `${this.baseUrl}${path}`,
        {
          method,
          ca: this.ca,
          headers: {
            accept: 'text/html',
            ...(cookie ? { cookie } : {}),
            ...(opts.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
            ...opts.headers,
          },
        },
        (res) => {
          for (const c of res.headers['set-cookie'] ?? []) {
            const [pair] = c.split(';');
            const eq = pair!.indexOf('=');
            const k = pair!.slice(0, eq);
            const v = pair!.slice(eq + 1);
            if (v === '' || /Expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(k);
            else this.cookies.set(k, v);
          }
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text,
              location: typeof res.headers.location === 'string' ? res.headers.location : null,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  get(path: string): Promise<WebResponse> {
    return this.request('GET', path);
  }

  /** GETs `pagePath`, takes its CSRF token, POSTs the form to `action`. */
  async submit(pagePath: string, action: string, form: Record<string, string>): Promise<WebResponse> {
    const page = await this.get(pagePath);
    const token = csrfOf(page.text);
    return this.request('POST', action, { form: { _csrf: token, ...form } });
  }

  async login(username: string, password: string): Promise<WebResponse> {
    return this.submit('/login', '/login', { username, password });
  }
}

/** The CSRF token a page carries (meta tag or hidden field). */
export function csrfOf(html: string): string {
  const m = /name="csrf-token" content="([^"]+)"/.exec(html) ?? /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m?.[1]) throw new Error('no CSRF token on the page');
  return m[1];
}
