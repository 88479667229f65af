import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { io as ioc, type Socket as ClientSocket } from 'socket.io-client';
import * as defaultParser from 'socket.io-parser';
import { Decoder, Encoder, wireParser, type WirePacket } from '../../shared/protocol/wire-parser.ts';

const packets: WirePacket[] = [
  { type: 0, nsp: '/' },
  { type: 0, nsp: '/', data: { sid: 'abc' } },
  { type: 0, nsp: '/admin', data: { token: 'x' } },
  { type: 1, nsp: '/' },
  { type: 1, nsp: '/admin' },
  { type: 2, nsp: '/', data: ['ping', {}] },
  { type: 2, nsp: '/', data: ['ping', {}], id: 0 },
  { type: 2, nsp: '/', data: ['create website', { domain: 'bücher.example', n: 1.5 }], id: 12345 },
  { type: 2, nsp: '/admin', data: ['event', { topic: 't', data: [1, null, 'x"y'] }], id: 7 },
  { type: 2, nsp: '/', data: [42, 'numeric event'] },
  { type: 3, nsp: '/', data: [{ ok: true, data: { pong: true, time: 1, agentVersion: '0.1.0' } }], id: 99 },
  { type: 3, nsp: '/', data: [], id: 1 },
  { type: 4, nsp: '/', data: { message: 'refused: no certificate' } },
  { type: 4, nsp: '/admin', data: 'not authorized' },
];

function decodeWith(
  decoder: { add(s: unknown): void; on(e: string, f: (p: unknown) => void): unknown },
  s: unknown,
) {
  let out: unknown;
  decoder.on('decoded', (p) => (out = p));
  decoder.add(s);
  return out;
}

test('the wire parser writes and reads exactly what socket.io-parser does (non-binary packets)', () => {
  const ours = new Encoder();
  const theirs = new defaultParser.Encoder();
  for (const p of packets) {
    const text = ours.encode(p);
    assert.deepEqual(text, theirs.encode(p as defaultParser.Packet), JSON.stringify(p));
    const s = text[0]!;
    const a = decodeWith(new Decoder(), s);
    const b = decodeWith(new defaultParser.Decoder(), s);
    assert.deepEqual(a, b, s);
    assert.deepEqual({ ...(a as object) }, JSON.parse(JSON.stringify(p)) as unknown, s);
  }
});

test('the wire parser refuses binary and malformed packets', () => {
  const bad: unknown[] = [
    Buffer.from('2["ping"]'),
    new ArrayBuffer(4),
    '',
    '7["x"]',
    '5-1["x",{"_placeholder":true,"num":0}]', // binary event
    '61-1[{"_placeholder":true,"num":0}]', // binary ack
    'x',
    '2["connect"]',
    '2["disconnect"]',
    '2["newListener"]',
    '2[]',
    '2[null]',
    '2{"a":1}',
    '2"ping"',
    '2["ping"',
    '2["ping"]garbage',
    '212a["ping"]',
    '2999999999999999999999["ping"]',
    '3{"ok":true}',
    '3',
    '2',
    '212',
    '2/admin,',
    '0[1]',
    '0"x"',
    '1{}',
    '4[1]',
    '4',
  ];
  for (const input of bad) {
    const d = new Decoder();
    let decoded = false;
    d.on('decoded', () => (decoded = true));
    assert.throws(() => d.add(input), Error, `refused: ${String(input)}`);
    assert.equal(decoded, false);
  }
  assert.throws(() => new Encoder().encode({ type: 5, nsp: '/', data: ['x'] }), /not supported/);
});

async function listen(opts: { serverParser: boolean }) {
  const server = http.createServer();
  const io = new Server(server, {
    transports: ['websocket'],
    ...(opts.serverParser ? { parser: wireParser } : {}),
  });
  const disconnects: string[] = [];
  io.on('connection', (socket) => {
    socket.on('disconnect', (reason) => disconnects.push(reason));
    socket.onAny((event: unknown, ...args: unknown[]) => {
      const ack = args[args.length - 1];
      if (typeof ack === 'function')
        (ack as (r: unknown) => void)({ ok: true, data: { event, arg: args[0] } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { io, url, disconnects };
}

async function connect(url: string, withParser: boolean): Promise<ClientSocket> {
  const c = ioc(url, {
    transports: ['websocket'],
    reconnection: false,
    ...(withParser ? { parser: wireParser } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('connect_error', reject);
  });
  return c;
}

test('a Socket.IO server and client talk through the wire parser, also with a default peer', async () => {
  for (const [serverParser, clientParser] of [
    [true, true],
    [true, false],
    [false, true],
  ] as const) {
    const s = await listen({ serverParser });
    try {
      const c = await connect(s.url, clientParser);
      const reply: unknown = await c.timeout(5000).emitWithAck('create website', { domain: 'a.example' });
      assert.deepEqual(reply, { ok: true, data: { event: 'create website', arg: { domain: 'a.example' } } });
      c.close();
    } finally {
      await s.io.close();
    }
  }
});

test('a peer that sends a malformed packet is disconnected by a server using the wire parser', async () => {
  const s = await listen({ serverParser: true });
  try {
    const c = await connect(s.url, false);
    const closed = new Promise<string>((resolve) => c.once('disconnect', (reason) => resolve(reason)));
    // A raw Socket.IO packet emitting a reserved event name, bypassing the client's checks.
    c.io.engine.write('2["disconnect"]');
    assert.equal(await closed, 'transport close');
    c.close();
  } finally {
    await s.io.close();
  }
});
