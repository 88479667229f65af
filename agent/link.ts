import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { verifyPeerCertificate, type KeyPurpose } from '../shared/pki/verify.ts';
import { AGENT_EVENT, HELLO_EVENT, type Hello } from '../shared/protocol/hello.ts';
import type { LinkSocket } from '../shared/link/socket.ts';
import type { CallContext } from './modules/types.ts';
import type { Router } from './rpc/router.ts';

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/** The panel end of a link as the agent sees it (the firewall's lock-out guard uses it). */
export type PanelPeer = CallContext['peer'];

export interface ServeOptions {
  router: Router;
  hello: () => Hello;
  logger: Logger;
}

/**
 * Serves the router over one link, whichever side dialed: sends the hello, answers every event
 * that asks for an acknowledgement with the router's reply, and gives handlers an `emit` to the
 * panel at the other end.
 */
export function serveLink(socket: LinkSocket, peer: PanelPeer, opts: ServeOptions): void {
  socket.send(HELLO_EVENT, opts.hello());
  const emit = (topic: string, data: unknown): void => {
    socket.send(AGENT_EVENT, { topic, data });
  };
  socket.onMessage((event, params, ack) => {
    if (!ack) return; // every RPC needs an ack; others are ignored
    void opts.router.dispatch(event, params, { peer, emit }).then(ack);
  });
}

interface LiveLink {
  socket: LinkSocket;
  peer: PanelPeer;
  /** The panel's certificate on this link (DER), checked again on revocation pushes. */
  panelCert: () => Buffer | undefined;
  /** The TLS role the panel plays on this link (client when it dialed, server when it listens). */
  purpose: KeyPurpose;
}

export interface AgentLinksOptions extends ServeOptions {
  tls: TlsMaterial;
  /** Revoked panel serials (normalised), consulted on every link. */
  revoked: () => ReadonlySet<string>;
}

/**
 * The agent's live links to the panel, whatever transport opened them (the TLS listener in
 * server.ts, the dial-out in dialer.ts), and the TLS material they use. Certificate renewal and
 * revocation pushes (trust-handlers.ts) act here, not on a transport.
 */
export class AgentLinks {
  private readonly live = new Set<LiveLink>();
  private readonly tlsListeners: ((tls: TlsMaterial) => void)[] = [];
  private material: TlsMaterial;

  constructor(private readonly opts: AgentLinksOptions) {
    this.material = opts.tls;
  }

  get tls(): TlsMaterial {
    return this.material;
  }

  /** Checks the panel's certificate: pinned CA, urn:ponio:panel, `purpose`, validity, not revoked. */
  checkPanel(raw: Buffer | undefined, purpose: KeyPurpose): { ok: true } | { ok: false; reason: string } {
    if (!raw) return { ok: false, reason: 'no panel certificate' };
    const r = verifyPeerCertificate(new X509Certificate(raw), {
      caPem: this.material.caPem,
      expect: { kind: 'panel' },
      purpose,
      revoked: this.opts.revoked(),
    });
    return r.ok ? { ok: true } : r;
  }

  /** Serves the router over a new link until it closes. */
  serve(link: LiveLink): void {
    this.live.add(link);
    link.socket.onClose((reason) => {
      this.live.delete(link);
      this.opts.logger.info({ peer: link.peer, reason }, 'panel disconnected');
    });
    this.opts.logger.info({ peer: link.peer }, 'panel connected');
    serveLink(link.socket, link.peer, this.opts);
  }

  /** Sends `event` {topic, data} over every live link. */
  broadcast(topic: string, data: unknown): void {
    for (const l of this.live) l.socket.send(AGENT_EVENT, { topic, data });
  }

  /** Sends the hello again over every live link (a module's service state changed). */
  resendHello(): void {
    for (const l of this.live) l.socket.send(HELLO_EVENT, this.opts.hello());
  }

  /** Live links (diagnostics and tests). */
  count(): number {
    return this.live.size;
  }

  /** Called with the new material whenever it changes (transports switch their TLS context). */
  onTlsChange(listener: (tls: TlsMaterial) => void): void {
    this.tlsListeners.push(listener);
  }

  /** Replaces the certificate (renewal) and/or CA; open links stay up unless no longer trusted. */
  setTls(next: TlsMaterial): void {
    this.material = next;
    for (const l of this.tlsListeners) l(next);
    this.enforceRevocations();
  }

  /** Closes links whose panel certificate is no longer acceptable (e.g. now revoked). */
  enforceRevocations(): void {
    for (const l of [...this.live]) {
      const r = this.checkPanel(l.panelCert(), l.purpose);
      if (!r.ok) {
        this.opts.logger.warn({ peer: l.peer, reason: r.reason }, 'dropping a panel connection');
        l.socket.close();
      }
    }
  }

  closeAll(): void {
    for (const l of [...this.live]) l.socket.close();
  }
}
