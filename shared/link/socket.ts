/**
 * The small socket interface the RPC link runs over, on both sides and in both directions. A
 * link does not know who dialed: the panel's host link and the agent's router see the same
 * operations whether the panel connected to the agent (forward mode) or the agent to the panel
 * (reverse mode). Socket.IO sockets (client and server side) are adapted in socket-io.ts.
 */
export type Ack = (reply: unknown) => void;

export interface LinkSocket {
  readonly connected: boolean;
  /** Sends an event that expects no answer. */
  send(event: string, data: unknown): void;
  /**
   * Sends an event and resolves with the peer's acknowledgement. Rejects when no answer came
   * within `timeoutMs` or the link ended first (then `connected` is false).
   */
  request(event: string, data: unknown, timeoutMs: number): Promise<unknown>;
  /** Every incoming event; `ack` is null when the sender expects no answer. */
  onMessage(listener: (event: string, data: unknown, ack: Ack | null) => void): void;
  /** Once, when the link ends: either side closed it, or a keep-alive went unanswered. */
  onClose(listener: (reason: string) => void): void;
  /** Each keep-alive exchange: a sign of life without traffic. */
  onAlive(listener: () => void): void;
  close(): void;
}
