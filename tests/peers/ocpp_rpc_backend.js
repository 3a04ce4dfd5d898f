// A strict OCPP 1.6 backend on ocpp-rpc (npm), independent of the `ocpp` Python package: every frame,
// both ways, is validated against the OCPP 1.6 JSON schemas (strictMode); an off-schema CALL gets a
// CALLERROR from ocpp-rpc itself. Writes one JSON line per event to stdout: {"event": "listening",
// port}, then per connection "connected", every raw "message" (in = from the charger, out = sent),
// any "strictValidationFailure", and "disconnected".
// usage: node ocpp_rpc_backend.js HEARTBEAT_INTERVAL ACCEPTED_TAG...   (NODE_PATH: ocpp-rpc's folder)
// An idTag starting with SLOW is answered Invalid after SLOW_ANSWER_MS: a slow backend, during which
// the charger's own timers go on sending CALLs.
const { RPCServer } = require('ocpp-rpc');

const heartbeatInterval = Number(process.argv[2] || 60);
const acceptedTags = new Set(process.argv.slice(3));
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const now = () => new Date().toISOString();
const idTagInfo = (idTag) => ({ status: acceptedTags.has(idTag) ? 'Accepted' : 'Invalid' });
let nextTransactionId = 1;
const SLOW_ANSWER_MS = 5000; // over two heartbeat intervals: at least two Heartbeats meanwhile
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const server = new RPCServer({ protocols: ['ocpp1.6'], strictMode: true, pingIntervalMs: 0 });
server.on('client', (client) => {
  const identity = client.identity;
  emit({ event: 'connected', identity });
  client.on('message', ({ message, outbound }) =>
    emit({ event: 'message', identity, direction: outbound ? 'out' : 'in', message: String(message) }));
  client.on('strictValidationFailure', ({ error, messageId, method, outbound, isCall }) =>
    emit({ event: 'strictValidationFailure', identity, method, messageId, outbound, isCall, error: String(error) }));
  client.on('close', ({ code }) => emit({ event: 'disconnected', identity, code }));
  client.handle('BootNotification', () => ({ status: 'Accepted', currentTime: now(), interval: heartbeatInterval }));
  client.handle('Heartbeat', () => ({ currentTime: now() }));
  client.handle('Authorize', async ({ params }) => {
    if (params.idTag.startsWith('SLOW')) await sleep(SLOW_ANSWER_MS);
    return { idTagInfo: idTagInfo(params.idTag) };
  });
  client.handle('StartTransaction', ({ params }) => ({
    transactionId: nextTransactionId++, idTagInfo: idTagInfo(params.idTag) }));
  client.handle('StopTransaction', () => ({ idTagInfo: { status: 'Accepted' } }));
  client.handle('MeterValues', () => ({}));
  client.handle('StatusNotification', () => ({}));
  client.handle('FirmwareStatusNotification', () => ({}));
  client.handle('DiagnosticsStatusNotification', () => ({}));
  client.handle('DataTransfer', () => ({ status: 'UnknownVendorId' }));
});
server.listen(0, '127.0.0.1').then((httpServer) => emit({ event: 'listening', port: httpServer.address().port }));
process.on('SIGTERM', () => server.close({ force: true }).then(() => process.exit(0)));
